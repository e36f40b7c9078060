// Runs the real oomguard binary ($OOMGUARD_BIN) with stderr captured, and
// splits its output into journal entries ("<prio>event: message ... FIELDS").
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace oomguard::test {

inline std::string oomguard_bin() {
    const char* b = std::getenv("OOMGUARD_BIN");
    return b ? b : "build/src/oomguard";
}

// The value of FIELD=value in an entry ("" when absent).
inline std::string field(const std::string& entry, const std::string& name) {
    std::string key = " " + name + "=";
    size_t p = entry.find(key);
    if (p == std::string::npos) return "";
    p += key.size();
    size_t e = entry.find_first_of(" \n", p);
    return entry.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

class DaemonRun {
public:
    explicit DaemonRun(const std::vector<std::string>& args) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return;
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(p[1], STDERR_FILENO);
            ::dup2(p[1], STDOUT_FILENO);
            std::vector<char*> argv;
            std::string bin = oomguard_bin();
            argv.push_back(bin.data());
            std::vector<std::string> copy = args;
            for (auto& a : copy) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(bin.c_str(), argv.data());
            _exit(127);
        }
        ::close(p[1]);
        fd_ = p[0];
        ::fcntl(fd_, F_SETFL, O_NONBLOCK);
    }
    ~DaemonRun() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
        }
        if (fd_ >= 0) ::close(fd_);
    }

    // Waits until an entry satisfies `pred`; returns it, or "" after the timeout.
    std::string wait_entry(const std::function<bool(const std::string&)>& pred,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        auto end = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (size_t i = checked_; i < entries_.size(); ++i)
                if (pred(entries_[i])) return entries_[i];
            // The last entry may still grow (a multi-line message): re-check it next time.
            checked_ = entries_.empty() ? 0 : entries_.size() - 1;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                end - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !pump(static_cast<int>(left.count()))) return "";
        }
    }
    // An entry of this event ("trigger", "heaviest", ...) that contains `needle`.
    std::string wait_event(const std::string& event, const std::string& needle = "",
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return wait_entry(
            [&](const std::string& e) {
                size_t gt = e.find('>');
                return gt != std::string::npos &&
                       e.compare(gt + 1, event.size() + 1, event + ":") == 0 &&
                       (needle.empty() || e.find(needle) != std::string::npos);
            },
            timeout);
    }
    // SIGTERM and wait; returns the exit code (or -1).
    int stop() {
        if (pid_ <= 0) return -1;
        ::kill(pid_, SIGTERM);
        int st = 0;
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (::waitpid(pid_, &st, WNOHANG) == 0) {
            pump(10);
            if (std::chrono::steady_clock::now() > end) return -1;
        }
        pid_ = -1;
        while (pump(0)) {
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    pid_t pid() const { return pid_; }
    std::string output() const {
        std::string all;
        for (const auto& e : entries_) all += e + "\n";
        return all + partial_;
    }

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    std::vector<std::string> entries_;
    std::string partial_;
    size_t checked_ = 0;

    // Reads what is there (waiting up to ms); false at EOF or timeout without data.
    bool pump(int ms) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0) return false;
        char buf[8192];
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) return false;
        partial_.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = partial_.find('\n')) != std::string::npos) {
            std::string line = partial_.substr(0, nl);
            partial_.erase(0, nl + 1);
            // "<N>event: ..." starts an entry; other lines continue the last one.
            if (line.size() > 3 && line[0] == '<' && line[2] == '>')
                entries_.push_back(line);
            else if (!entries_.empty())
                entries_.back() += "\n" + line;
            else
                entries_.push_back(line);
        }
        return true;
    }
};

}  // namespace oomguard::test
