// The cgroup tests' fixtures, now in tests/support (fake cgroupfs trees, pod
// logs, fake /proc, TempDir). The oomd-style names below are kept for these
// tests; they are the support library's functions, not copies.
#pragma once

// What the old header brought in, for the tests that relied on it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/cgroupfs.hpp"
#include "support/fake_proc.hpp"
#include "support/files.hpp"
#include "support/journal.hpp"
#include "support/pod_logs.hpp"
#include "support/process.hpp"

namespace oomguard::test {

inline void makeDir(const std::string& path) { make_dir(path); }
inline void makeFile(const std::string& path, const std::string& content) {
    write_file(path, content);
}
inline std::string readFile(const std::string& path) { return read_file(path); }
inline void removeTree(const std::string& path) { remove_tree(path); }

}  // namespace oomguard::test
