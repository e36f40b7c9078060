// load_config: the main file and its drop-ins, read with the ownership checks
// that keep anyone but root from deciding what the daemon writes to.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "config/config.hpp"

namespace oomguard {

std::string insecure_config_reason(unsigned uid, unsigned mode, bool regular_file,
                                   unsigned daemon_uid) {
    if (!regular_file) return "is not a regular file";
    if (uid != 0 && uid != daemon_uid)
        return "is owned by uid " + std::to_string(uid) +
               ", not root: only root may decide what the daemon writes to (chown root:root it)";
    if (mode & (S_IWGRP | S_IWOTH)) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
        return std::string("is writable by ") + ((mode & S_IWOTH) ? "others" : "its group") +
               " (mode " + buf +
               "): only root may decide what the daemon writes to (chmod go-w it)";
    }
    return "";
}

std::string dropin_dir_for(const std::string& config_path) {
    constexpr std::string_view kExt = ".toml";
    std::string_view p = config_path;
    if (p.size() > kExt.size() && p.substr(p.size() - kExt.size()) == kExt)
        p.remove_suffix(kExt.size());
    return std::string(p) + ".d";
}

namespace {

// Larger than any real config: refuse rather than read a runaway file.
constexpr size_t kMaxConfigBytes = 1 << 20;
// More drop-ins than any fleet tool writes: refuse rather than read a runaway directory.
constexpr size_t kMaxDropins = 256;

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

// The text of one config file, or an error (the message only; the caller names the file).
Result<std::string> read_config_file(const std::string& path, const ConfigFileCheck& check) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) return Error::sys(errno, "cannot read config file");
    // Checked on the open fd, so the file checked is the file read.
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Error::sys(errno, "cannot stat config file");
    if (!S_ISREG(st.st_mode)) return Error::logic("refusing config file: it is not a regular file");
    if (!check.allow_insecure) {
        std::string why = insecure_config_reason(st.st_uid, st.st_mode, true, ::geteuid());
        if (!why.empty())
            return Error::logic("refusing config file: it " + why +
                                "; --allow-insecure-config overrides this for tests");
    }
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::sys(errno, "cannot read config file");
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxConfigBytes)
            return Error::logic("refusing config file: larger than 1 MiB");
    }
    return text;
}

// The *.toml files of dir in lexical (byte) order; none when dir does not exist.
Result<std::vector<std::string>> list_dropins(const std::string& dir,
                                              const ConfigFileCheck& check) {
    std::vector<std::string> files;
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return files;
        return Error::sys(errno, "cannot open the drop-in directory");
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Error::sys(errno, "cannot stat the drop-in directory");
    // Whoever may add a file here may decide what the daemon writes to.
    if (!check.allow_insecure) {
        std::string why = insecure_config_reason(st.st_uid, st.st_mode, true, ::geteuid());
        if (!why.empty())
            return Error::logic("refusing the drop-in directory: it " + why +
                                "; --allow-insecure-config overrides this for tests");
    }
    DIR* d = ::fdopendir(::dup(fd.get()));
    if (!d) return Error::sys(errno, "cannot list the drop-in directory");
    while (const dirent* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        // Editors' and package managers' leftovers (.foo.toml.swp, x.toml.dpkg-old) do not end in
        // .toml.
        if (name.empty() || name[0] == '.' || name.size() <= 5 ||
            name.substr(name.size() - 5) != ".toml")
            continue;
        files.push_back(dir + "/" + std::string(name));
    }
    ::closedir(d);
    if (files.size() > kMaxDropins)
        return Error::logic("refusing the drop-in directory: more than " +
                            std::to_string(kMaxDropins) + " *.toml files");
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

ConfigLoad load_config(const std::string& path, ConfigFileCheck check) {
    ConfigLoad out;
    auto fail = [&](const std::string& file, std::string msg) {
        out.errors.push_back(ConfigError{"", 0, std::move(msg), file});
        return out;
    };
    Result<std::string> text = read_config_file(path, check);
    if (!text) return fail(path, text.error().message);

    const std::string dir = check.dropin_dir.value_or(dropin_dir_for(path));
    Result<std::vector<std::string>> dropins = list_dropins(dir, check);
    if (!dropins) return fail(dir, dropins.error().message);

    Config c;
    c.source_path = path;
    apply_config_text(*text, path, c, out.errors);
    for (const auto& f : *dropins) {
        Result<std::string> t = read_config_file(f, check);
        if (!t) {
            out.errors.push_back(ConfigError{"", 0, t.error().message, f});
            continue;
        }
        apply_config_text(*t, f, c, out.errors);
    }
    check_config_relations(c, out.errors);
    if (out.errors.empty()) out.config = std::move(c);
    return out;
}

}  // namespace oomguard
