// Child processes of a test: the one runner for the real oomguard binary (and
// for busctl, oomguardctl, dbus-daemon). A runner signals and reaps only the
// process it started itself, never anything else.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/rig_paths.hpp"

namespace oomguard::test {

using Env = std::map<std::string, std::string>;

std::string oomguard_binary();  // $OOMGUARD_BIN (set by meson), else build/src/oomguard

// setpriv --reuid=nobody --regid=nogroup --clear-groups: prepend to an argv.
inline const std::vector<std::string> kAsNobody = {"setpriv", "--reuid=nobody", "--regid=nogroup",
                                                   "--clear-groups"};
std::vector<std::string> as_nobody(std::vector<std::string> argv);

// One started process. Its stdout and stderr go to files (named, or anonymous
// memfds when no path is given); the test reads them while it runs.
class Process {
public:
    Process() = default;
    // Still running: SIGKILL and reap (it is ours).
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    // argv[0] is looked up in PATH. Default signal dispositions and mask, stdin
    // /dev/null, and none of the test runner's NOTIFY_SOCKET, WATCHDOG_* or
    // JOURNAL_STREAM (env may set them). err_path == out_path (a name) or
    // kToOut: stderr goes where stdout goes.
    static constexpr const char* kToOut = "&1";
    void start(const std::vector<std::string>& argv, const Env& env = {},
               const std::string& out_path = "", const std::string& err_path = "");
    pid_t pid() const { return pid_; }
    bool started() const { return pid_ > 0; }
    bool running();
    void signal(int sig);
    // The exit status (WEXITSTATUS), or -1 on timeout or death by a signal.
    int wait_exit(std::chrono::milliseconds timeout);
    // SIGTERM, then wait_exit.
    int stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));

    std::string out() const;
    std::string err() const;
    bool wait_out(const std::string& needle, std::chrono::milliseconds timeout,
                  size_t occurrences = 1) const;
    bool wait_err(const std::string& needle, std::chrono::milliseconds timeout,
                  size_t occurrences = 1) const;

private:
    pid_t pid_ = -1;
    bool exited_ = false;
    int status_ = 0;
    int out_fd_ = -1, err_fd_ = -1;  // read ends (pread from 0)
};

struct RunResult {
    int exit_code = -1;  // -1: killed or timed out
    std::string out, err;
};
// Runs argv to the end, capturing stdout and stderr; SIGKILLs it after timeout.
RunResult run(const std::vector<std::string>& argv, const Env& env = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The real oomguard binary, its stdout and stderr in one log, read as journal
// entries (support/journal.hpp).
//
// Hermetic by default: start() adds whatever of RigPaths (support/rig_paths.hpp)
// the test did not give the daemon itself, from a RigPaths in a temp dir of
// the runner's own, so that no daemon a test starts ranks the host's cgroups,
// reads its /dev/kmsg, takes its /run/oomguard/lock or registers on its
// system bus:
//   - --cgroup-root, unless the args have it or the config's [paths] sets cgroup;
//   - [paths] kmsg and lock, written into the --config file (in place, owner
//     and mode kept; lines are added at the end of [paths], so the lines
//     below it move) unless it sets them;
//   - DBUS_SYSTEM_BUS_ADDRESS at a socket nobody listens on, unless env sets
//     it or the args have --no-dbus;
//   - [action] sysrq_trigger at a file of the runner's own, unless the config
//     names a trigger: this one even with allow_host(), as the daemon's
//     default is the host's /proc/sysrq-trigger (the line goes right after
//     the [action] header). A config that names the host's trigger (by
//     any path, or anything in a procfs directory), or a string the runner
//     cannot read, throws unless the args have --dry-run.
// Only at start(): a test that rewrites its config and reloads (SIGHUP, D-Bus
// Reload) writes a trigger of its own into the new text, as every config
// writer in tests/ does. A --check-config run gets none (it reads only the
// config and the proc root). A test that means the host's paths says so with
// allow_host().
class DaemonProcess {
public:
    DaemonProcess() = default;
    // Starts at once, the log in memory.
    explicit DaemonProcess(const std::vector<std::string>& args) { start(args); }

    // Opt out of the hermetic defaults: start() runs the binary with exactly
    // the args, env and config it is given. Before start().
    void allow_host() { hermetic_ = false; }
    // The runner's own RigPaths, when start() needed it (else nullptr).
    const RigPaths* own_paths() const { return own_ ? &*own_ : nullptr; }

    // A non-empty wrapper runs it through a command first, e.g. kAsNobody.
    void start(const std::vector<std::string>& args, const Env& env = {},
               const std::string& log_path = "", const std::vector<std::string>& wrapper = {});
    pid_t pid() const { return p_.pid(); }
    bool running() { return p_.running(); }
    void signal(int sig) { p_.signal(sig); }
    int wait_exit(std::chrono::milliseconds timeout) { return p_.wait_exit(timeout); }
    int stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        return p_.stop(timeout);
    }

    std::string log() const { return p_.out(); }
    size_t log_count(const std::string& needle) const;
    bool wait_log(const std::string& needle, std::chrono::milliseconds timeout,
                  size_t occurrences = 1) const;

    std::vector<std::string> entries() const;
    // Waits until an entry satisfies `pred`; returns it, or "" after the
    // timeout. Each wait starts at the entries the previous waits had not yet
    // ruled out.
    std::string wait_entry(const std::function<bool(const std::string&)>& pred,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // An entry of this event ("trigger", "heaviest", ...) that contains `needle`.
    std::string wait_event(const std::string& event, const std::string& needle = "",
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
    // Adds the hermetic defaults the args, env and config leave out (only the
    // trigger after allow_host()).
    void keep_off_host(std::vector<std::string>& args, Env& env);
    // The runner's own RigPaths and trigger file, made on first use.
    const RigPaths& own_files();

    bool hermetic_ = true;
    // Declared before p_: the daemon is killed and reaped before its files go.
    std::optional<TempDir> own_dir_;
    std::optional<RigPaths> own_;
    Process p_;
    size_t checked_ = 0;
};

}  // namespace oomguard::test
