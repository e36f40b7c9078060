#include "support/process.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <regex>
#include <stdexcept>
#include <thread>

#include "support/files.hpp"
#include "support/journal.hpp"

namespace oomguard::test {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

std::string oomguard_binary() {
    if (const char* b = std::getenv("OOMGUARD_BIN")) return b;
    return "build/src/oomguard";
}

std::vector<std::string> as_nobody(std::vector<std::string> argv) {
    std::vector<std::string> v = kAsNobody;
    v.insert(v.end(), argv.begin(), argv.end());
    return v;
}

namespace {

// A write end for the child and a read end for us: a named file, or a memfd.
int open_output(const std::string& path, int& read_fd) {
    if (path.empty()) {
        int fd = ::memfd_create("oomguard-test-output", MFD_CLOEXEC);
        if (fd < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
        read_fd = ::dup(fd);
        return fd;
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("open " + path + ": " + std::strerror(errno));
    // A FIFO or device is the test's to read: no second reader of ours on it.
    struct stat st;
    read_fd = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
                  ? ::open(path.c_str(), O_RDONLY | O_CLOEXEC)
                  : -1;
    return fd;
}

std::string read_all(int fd) {
    std::string s;
    if (fd < 0) return s;
    char buf[8192];
    off_t off = 0;
    for (;;) {
        ssize_t n = ::pread(fd, buf, sizeof buf, off);
        if (n <= 0) break;
        s.append(buf, static_cast<size_t>(n));
        off += n;
    }
    return s;
}

bool wait_count(const std::function<std::string()>& text, const std::string& needle,
                std::chrono::milliseconds timeout, size_t occurrences) {
    auto deadline = Steady::now() + timeout;
    do {
        if (count_of(text(), needle) >= occurrences) return true;
        std::this_thread::sleep_for(5ms);
    } while (Steady::now() < deadline);
    return count_of(text(), needle) >= occurrences;
}

}  // namespace

Process::~Process() {
    if (pid_ > 0 && !exited_) {
        ::kill(pid_, SIGKILL);
        ::kill(pid_, SIGCONT);  // a stopped child (SIGSTOP) dies too
        ::waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0 && err_fd_ != out_fd_) ::close(err_fd_);
}

void Process::start(const std::vector<std::string>& argv, const Env& env,
                    const std::string& out_path, const std::string& err_path) {
    if (pid_ > 0) throw std::logic_error("Process::start: already started");
    const bool one_file = err_path == kToOut || (!out_path.empty() && out_path == err_path);
    int out_w = open_output(out_path, out_fd_);
    int err_w = one_file ? out_w : open_output(err_path, err_fd_);
    if (one_file) err_fd_ = out_fd_;
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
        ::dup2(out_w, STDOUT_FILENO);
        ::dup2(err_w, STDERR_FILENO);
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, STDIN_FILENO);
        for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT, SIGCHLD}) ::signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        for (const char* v : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"})
            ::unsetenv(v);
        for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        std::fprintf(stderr, "execvp %s: %s\n", args[0], std::strerror(errno));
        _exit(127);
    }
    ::close(out_w);
    if (!one_file) ::close(err_w);
}

bool Process::running() {
    if (pid_ <= 0 || exited_) return false;
    int st;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        exited_ = true;
        status_ = st;
        return false;
    }
    return true;
}

void Process::signal(int sig) {
    if (pid_ > 0 && !exited_) ::kill(pid_, sig);
}

int Process::wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = Steady::now() + timeout;
    while (running()) {
        if (Steady::now() > deadline) return -1;
        std::this_thread::sleep_for(5ms);
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

int Process::stop(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return -1;
    signal(SIGTERM);
    return wait_exit(timeout);
}

std::string Process::out() const { return read_all(out_fd_); }
std::string Process::err() const { return read_all(err_fd_); }

bool Process::wait_out(const std::string& needle, std::chrono::milliseconds timeout,
                       size_t occurrences) const {
    return wait_count([this] { return out(); }, needle, timeout, occurrences);
}

bool Process::wait_err(const std::string& needle, std::chrono::milliseconds timeout,
                       size_t occurrences) const {
    return wait_count([this] { return err(); }, needle, timeout, occurrences);
}

RunResult run(const std::vector<std::string>& argv, const Env& env,
              std::chrono::milliseconds timeout) {
    Process p;
    p.start(argv, env);
    RunResult r;
    r.exit_code = p.wait_exit(timeout);
    if (p.running()) {
        p.signal(SIGKILL);
        p.wait_exit(5s);
        r.exit_code = -1;
    }
    r.out = p.out();
    r.err = p.err();
    return r;
}

namespace {

// Whether the args have the option `name` ("--name" or "--name=...").
bool has_option(const std::vector<std::string>& args, const std::string& name) {
    for (const auto& a : args)
        if (a == name || a.rfind(name + "=", 0) == 0) return true;
    return false;
}

// The config the daemon will read: --config PATH, --config=PATH, -c PATH or
// -cPATH ("" if none); the last one, as getopt leaves it.
std::string config_arg(const std::vector<std::string>& args) {
    std::string path;
    for (size_t i = 0; i < args.size(); ++i) {
        if ((args[i] == "--config" || args[i] == "-c") && i + 1 < args.size())
            path = args[++i];
        else if (args[i].rfind("--config=", 0) == 0)
            path = args[i].substr(9);
        else if (args[i].size() > 2 && args[i].rfind("-c", 0) == 0)
            path = args[i].substr(2);
    }
    return path;
}

// Whether the config sets sysrq_trigger, and the path when it is a plain
// TOML string ("..." without escapes, or '...'); "" when it cannot tell.
std::optional<std::string> named_trigger(const std::string& config) {
    static const std::regex kKey("(^|\n)[ \t]*sysrq_trigger[ \t]*=([^\n]*)");
    static const std::regex kValue("[ \t]*(\"([^\"\\\\]*)\"|'([^']*)')[ \t]*(#.*)?\r?");
    std::smatch key, value;
    if (!std::regex_search(config, key, kKey)) return std::nullopt;
    const std::string rest = key[2].str();
    if (!std::regex_match(rest, value, kValue)) return std::string();
    return value[2].matched ? value[2].str() : value[3].str();
}

// The host's sysrq-trigger, by any path: /proc/sysrq-trigger written
// otherwise, or anything in a procfs directory (/proc/self/root/proc/...).
// Lexical first: a container may have no /proc/sysrq-trigger at all. An
// unparsable path ("") counts as one.
bool host_trigger(const std::string& path) {
    if (path.empty()) return true;
    const std::filesystem::path p = std::filesystem::path(path).lexically_normal();
    if (p == "/proc/sysrq-trigger") return true;
    auto procfs = [](const std::filesystem::path& q) {
        struct statfs fs {};
        return ::statfs(q.c_str(), &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
    };
    return procfs(p) || procfs(p.parent_path());
}

// The config with `[action] sysrq_trigger = trigger`: after the [action]
// header if it has one (a comment after it allowed), else in an [action]
// table at its end.
std::string with_trigger(const std::string& config, const std::string& trigger) {
    const std::string line = "sysrq_trigger = \"" + trigger + "\"\n";
    static const std::regex kAction("(^|\n)[ \t]*\\[[ \t]*action[ \t]*\\][ \t]*(#[^\n]*)?\r?\n");
    std::smatch m;
    if (std::regex_search(config, m, kAction)) {
        const size_t at = static_cast<size_t>(m.position(0) + m.length(0));
        return config.substr(0, at) + line + config.substr(at);
    }
    std::string c = config;
    if (!c.empty() && c.back() != '\n') c += '\n';
    return c + "[action]\n" + line;
}

}  // namespace

void DaemonProcess::keep_off_host(std::vector<std::string>& args, Env& env) {
    if (has_option(args, "--check-config")) return;
    const std::string config = config_arg(args);
    struct stat st {};
    const bool have_config =
        !config.empty() && ::stat(config.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    std::string text;
    if (have_config) {
        if (::access(config.c_str(), R_OK) != 0)
            throw std::runtime_error("DaemonProcess: cannot read the config " + config);
        text = read_file(config);
    }
    // Never the host's trigger, whatever else the test means: a config that
    // names no trigger gets a file of the runner's own (the daemon's default
    // is /proc/sysrq-trigger), and one that names the host's (a copy of the
    // shipped config) runs only with --dry-run.
    const std::optional<std::string> named = named_trigger(text);
    if (named && host_trigger(*named) && !has_option(args, "--dry-run"))
        throw std::runtime_error("DaemonProcess: " + config + " names the trigger \"" + *named +
                                 "\", the host's sysrq-trigger (or a path the runner cannot "
                                 "read); give the test a trigger file of its own, or --dry-run");
    if (have_config && !named) {
        text = with_trigger(text, own_files().trigger);
        write_file(config, text);
    }
    // No config of the test's own: the default path may hold a real one.
    if (!have_config && !has_option(args, "--dry-run") && !has_option(args, "--version") &&
        !has_option(args, "--help"))
        args.push_back("--dry-run");
    if (!hermetic_) return;
    const bool cgroup =
        !has_option(args, "--cgroup-root") && !(have_config && RigPaths::sets(text, "cgroup"));
    const bool paths =
        have_config && (!RigPaths::sets(text, "kmsg") || !RigPaths::sets(text, "lock"));
    const bool bus = !has_option(args, "--no-dbus") && env.count("DBUS_SYSTEM_BUS_ADDRESS") == 0;
    if (!cgroup && !paths && !bus) return;
    own_files();
    if (cgroup) {
        args.push_back("--cgroup-root");
        args.push_back(own_->cgroup_root);
    }
    // O_TRUNC rewrites the file in place: its owner and mode stay the test's.
    if (paths) write_file(config, own_->apply(text));
    if (bus)
        for (const auto& [k, v] : own_->env()) env.emplace(k, v);
}

const RigPaths& DaemonProcess::own_files() {
    if (!own_) {
        own_dir_.emplace();
        // An unprivileged daemon (a kAsNobody wrapper) must reach the files, too.
        ::chmod(own_dir_->path().c_str(), 0755);
        own_.emplace(own_dir_->path());
        write_file(own_->trigger, "");
        ::chmod(own_->trigger.c_str(), 0666);
    }
    return *own_;
}

void DaemonProcess::start(const std::vector<std::string>& args, const Env& env,
                          const std::string& log_path, const std::vector<std::string>& wrapper) {
    std::vector<std::string> daemon_args = args;
    Env daemon_env = env;
    keep_off_host(daemon_args, daemon_env);
    std::vector<std::string> argv = wrapper;
    argv.push_back(oomguard_binary());
    argv.insert(argv.end(), daemon_args.begin(), daemon_args.end());
    // One log for both: the entries interleave as the daemon wrote them.
    p_.start(argv, daemon_env, log_path, log_path.empty() ? Process::kToOut : log_path);
}

size_t DaemonProcess::log_count(const std::string& needle) const { return count_of(log(), needle); }

bool DaemonProcess::wait_log(const std::string& needle, std::chrono::milliseconds timeout,
                             size_t occurrences) const {
    return wait_count([this] { return log(); }, needle, timeout, occurrences);
}

std::vector<std::string> DaemonProcess::entries() const { return split_entries(log()); }

std::string DaemonProcess::wait_entry(const std::function<bool(const std::string&)>& pred,
                                      std::chrono::milliseconds timeout) {
    auto end = Steady::now() + timeout;
    for (;;) {
        auto es = entries();
        for (size_t i = checked_; i < es.size(); ++i)
            if (pred(es[i])) return es[i];
        // The last entry may still grow (a multi-line message): re-check it next time.
        checked_ = es.empty() ? 0 : es.size() - 1;
        if (Steady::now() >= end) return "";
        std::this_thread::sleep_for(5ms);
    }
}

std::string DaemonProcess::wait_event(const std::string& event, const std::string& needle,
                                      std::chrono::milliseconds timeout) {
    return wait_entry([&](const std::string& e) { return is_event(e, event, needle); }, timeout);
}

}  // namespace oomguard::test
