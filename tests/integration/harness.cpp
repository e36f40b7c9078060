#include "harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace oomguard::test {

std::string oomguard_binary() {
    if (const char* b = std::getenv("OOMGUARD_BIN")) return b;
    return "build/src/oomguard";
}

TempDir::TempDir() {
    char tmpl[] = "/tmp/oomguard-test-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& rel, const std::string& content) const {
    std::filesystem::create_directories(std::filesystem::path(file(rel)).parent_path());
    write_file(file(rel), content);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
}

FakeProc::FakeProc(const std::string& root_dir, uint64_t total_bytes)
    : root_(root_dir + "/proc"), total_(total_bytes) {
    std::filesystem::create_directories(root_);
    write_file(root_ + "/meminfo", render(total_bytes / 2));
}

std::string FakeProc::render(uint64_t avail) const {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "MemTotal:       %14llu kB\n"
                  "MemFree:        %14llu kB\n"
                  "MemAvailable:   %14llu kB\n"
                  "Buffers:                     0 kB\n"
                  "Cached:                      0 kB\n"
                  "SwapTotal:                   0 kB\n"
                  "SwapFree:                    0 kB\n",
                  static_cast<unsigned long long>(total_ / 1024),
                  static_cast<unsigned long long>(avail / 1024),
                  static_cast<unsigned long long>(avail / 1024));
    return buf;
}

void FakeProc::set_available(uint64_t bytes) {
    // In place, same length: the daemon's kept fd sees it on the next pread.
    std::string s = render(bytes);
    int fd = ::open((root_ + "/meminfo").c_str(), O_WRONLY);
    if (fd < 0) throw std::runtime_error("open meminfo");
    if (::pwrite(fd, s.data(), s.size(), 0) != static_cast<ssize_t>(s.size())) {
        ::close(fd);
        throw std::runtime_error("pwrite meminfo");
    }
    ::close(fd);
}

TriggerFifo::TriggerFifo(const std::string& path) : path_(path) {
    if (mkfifo(path.c_str(), 0600) != 0) throw std::runtime_error("mkfifo " + path);
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("open fifo " + path);
}

TriggerFifo::~TriggerFifo() {
    if (fd_ >= 0) ::close(fd_);
}

size_t TriggerFifo::drain() {
    char buf[256];
    size_t n = 0;
    for (;;) {
        ssize_t r = ::read(fd_, buf, sizeof buf);
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; ++i) n += buf[i] == 'f';
    }
    total_ += n;
    return n;
}

std::optional<Clock::time_point> TriggerFifo::wait_byte(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() < 0) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
        if (r > 0 && (p.revents & POLLIN)) {
            auto t = Clock::now();
            if (drain() > 0) return t;
        } else if (r > 0 && (p.revents & POLLHUP)) {
            // No writer right now (the daemon closes after each write): sleep briefly.
            std::this_thread::sleep_for(1ms);
        }
    }
}

NotifySocket::NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("bind notify socket");
}

NotifySocket::~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
}

void NotifySocket::pump(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    int t = static_cast<int>(timeout.count());
    while (::poll(&p, 1, t) > 0) {
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) break;
        messages_.emplace_back(buf, static_cast<size_t>(n));
        t = 0;
    }
}

bool NotifySocket::wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    size_t seen = 0;
    do {
        for (; seen < messages_.size(); ++seen)
            if (messages_[seen].find(needle) != std::string::npos) return true;
        pump(20ms);
    } while (Clock::now() < deadline);
    for (; seen < messages_.size(); ++seen)
        if (messages_[seen].find(needle) != std::string::npos) return true;
    return false;
}

size_t NotifySocket::count(const std::string& needle) const {
    size_t n = 0;
    for (const auto& m : messages_) n += m.find(needle) != std::string::npos;
    return n;
}

DaemonProcess::~DaemonProcess() {
    if (pid_ > 0 && !exited_) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

void DaemonProcess::start(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env, const std::string& log_path,
                          const std::vector<std::string>& wrapper) {
    log_path_ = log_path;
    std::vector<std::string> argv_s = wrapper;
    argv_s.push_back(oomguard_binary());
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
        int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("WATCHDOG_USEC");
        ::unsetenv("WATCHDOG_PID");
        ::unsetenv("JOURNAL_STREAM");
        for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        std::vector<char*> argv;
        for (auto& s : argv_s) argv.push_back(s.data());
        argv.push_back(nullptr);
        ::execvp(argv[0], argv.data());
        std::perror("execv");
        _exit(127);
    }
}

bool DaemonProcess::running() {
    if (pid_ <= 0 || exited_) return false;
    int st;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        exited_ = true;
        status_ = st;
        return false;
    }
    return true;
}

void DaemonProcess::signal(int sig) {
    if (pid_ > 0 && !exited_) ::kill(pid_, sig);
}

int DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (running()) {
        if (Clock::now() > deadline) return -1;
        std::this_thread::sleep_for(5ms);
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

std::string DaemonProcess::log() const { return read_file(log_path_); }

size_t DaemonProcess::log_count(const std::string& needle) const {
    std::string s = log();
    size_t n = 0;
    for (size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + 1)) ++n;
    return n;
}

bool DaemonProcess::wait_log(const std::string& needle, std::chrono::milliseconds timeout,
                             size_t occurrences) const {
    auto deadline = Clock::now() + timeout;
    do {
        if (log_count(needle) >= occurrences) return true;
        std::this_thread::sleep_for(5ms);
    } while (Clock::now() < deadline);
    return log_count(needle) >= occurrences;
}

}  // namespace oomguard::test
