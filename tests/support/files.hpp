// Files and temporary directories for tests: the one TempDir of tests/, and
// the helpers that build trees (after oomd's Fixture::makeDir/makeFile).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace oomguard::test {

inline constexpr uint64_t MiB = 1ull << 20;

// Fixture trees go to /dev/shm (thousands of small files; a shared disk is
// slow). Page cache tests need a disk filesystem: TempDir(kOnDisk).
inline constexpr const char* kOnDisk = "/var/tmp";

// A fresh directory, removed with everything in it by the destructor.
class TempDir {
public:
    // base: where to make it; nullptr: /dev/shm when writable, else /tmp.
    explicit TempDir(const char* base = nullptr);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& rel) const { return path_ + "/" + rel; }
    std::string operator/(const std::string& rel) const { return file(rel); }
    // Writes <path>/<rel>, creating the directories on the way.
    void write(const std::string& rel, const std::string& content) const;

private:
    std::string path_;
};

// mkdir -p; throws naming the directory when it cannot.
void make_dir(const std::string& path);
// Creates or truncates `path` (and its parent directories); throws on failure.
void write_file(const std::string& path, const std::string& content);
// The whole file, or "" when it cannot be read.
std::string read_file(const std::string& path);
// rm -rf, not following symlinks; quiet.
void remove_tree(const std::string& path);
// Occurrences of `needle` in `haystack` (overlapping ones too).
size_t count_of(const std::string& haystack, const std::string& needle);

}  // namespace oomguard::test
