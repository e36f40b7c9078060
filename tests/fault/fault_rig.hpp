// Shared pieces of the fault-injection tests: the real oomguard binary against
// a fake proc root, with a config the test rewrites and a trigger it watches.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/support.hpp"

namespace oomguard::test {

// The config text for a rig: threshold, trigger and extra keys per section.
struct ConfigText {
    std::string memory = "min_available = \"500MiB\"";
    std::string trigger;
    std::string action = "repeat_after = \"100ms\"";
    std::string poll = "psi = false";
    std::string paths;

    std::string render() const {
        return "[memory]\n" + memory + "\n[action]\nsysrq_trigger = \"" + trigger + "\"\n" +
               action + "\n[poll]\nmin_interval = \"1ms\"\nmax_interval = \"100ms\"\n" + poll +
               "\n[paths]\n" + paths + "\n[kubernetes]\nlog_heaviest = false\n";
    }
};

// Hermetic by default: its daemon sees the rig's fake proc root, an empty fake
// cgroup root, an empty kmsg file and a lock of its own, never the host's.
struct FaultRig {
    TempDir dir;
    FakeProc proc{dir.file("proc"), 16384 * MiB};
    RigPaths paths{dir.path()};
    NotifySocket notify{dir.file("notify.sock")};
    DaemonProcess daemon;
    std::string config_path = dir.file("oomguard.toml");

    // Root-owned, 0644: what the daemon accepts without --allow-insecure-config.
    // With the rig's kmsg and lock unless the text names its own.
    void write_config(const std::string& text) const {
        write_file(config_path, paths.apply(text));
        ::chmod(config_path.c_str(), 0644);
    }

    // Starts the daemon and waits for READY=1; false (with the log) if it never came.
    bool start(const std::string& config_text, std::vector<std::string> extra_args = {},
               const std::vector<std::string>& wrapper = {}) {
        write_config(config_text);
        std::vector<std::string> args = base_args();
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        daemon.start(args, env(), dir.file("daemon.log"), wrapper);
        return notify.wait_for("READY=1", std::chrono::seconds(5));
    }

    // The config, the fake proc and cgroup roots, stderr, no mlock.
    std::vector<std::string> base_args() const {
        return paths.daemon_args(config_path, proc.dir());
    }
    // NOTIFY_SOCKET, and no system bus of the host's.
    std::map<std::string, std::string> env() const { return paths.env(notify.path()); }

    // Lets an unprivileged daemon (setpriv --reuid=nobody) reach the rig's files.
    void open_to_others() const {
        ::chmod(dir.path().c_str(), 0755);
        ::chmod(proc.dir().c_str(), 0755);
        ::chmod(notify.path().c_str(), 0777);
    }
};

// Root can mount, chown and run the daemon as nobody; the tests that need it skip without.
inline bool is_root() { return ::geteuid() == 0; }

// Number of 'f' bytes in a regular trigger file.
inline size_t f_count(const std::string& path) {
    size_t n = 0;
    for (char c : read_file(path)) n += c == 'f';
    return n;
}

inline bool wait_f_count(const std::string& path, size_t want, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (f_count(path) >= want) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return f_count(path) >= want;
}

// Moves this test process (and the daemons it starts) into a private mount
// namespace, so test mounts never show up on the host. Once per process.
inline bool private_mount_namespace(std::string& why) {
    static int state = 0;  // 0 untried, 1 ok, -1 failed
    static std::string error;
    if (state == 0) {
        if (::unshare(CLONE_NEWNS) != 0) {
            error = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
            state = -1;
        } else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            error = std::string("making / private: ") + std::strerror(errno);
            state = -1;
        } else {
            state = 1;
        }
    }
    why = error;
    return state == 1;
}

// A small tmpfs mounted at a directory of the test, unmounted on scope exit.
class TmpfsMount {
public:
    explicit TmpfsMount(const std::string& path) : path_(path) {
        ::mkdir(path.c_str(), 0755);
        if (::mount("oomguard-test", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    "size=64k,mode=0755") == 0)
            mounted_ = true;
        else
            error_ = std::strerror(errno);
    }
    ~TmpfsMount() {
        if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    }
    bool mounted() const { return mounted_; }
    const std::string& error() const { return error_; }
    bool set_read_only(bool ro) {
        unsigned long flags = MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC | (ro ? MS_RDONLY : 0);
        return ::mount("oomguard-test", path_.c_str(), "tmpfs", flags, "size=64k,mode=0755") == 0;
    }

private:
    std::string path_;
    bool mounted_ = false;
    std::string error_;
};

}  // namespace oomguard::test
