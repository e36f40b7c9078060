#include "stalling_bus.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace oomguard::bustest {

namespace {

int listen_at(const std::string& path) {
    ::unlink(path.c_str());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd, 64) != 0)
        throw std::runtime_error("StallingBus: cannot listen on " + path + ": " +
                                 std::strerror(errno));
    return fd;
}

int connect_to(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

struct Conn {
    int fd = -1;
    int up = -1;  // relay: the real bus
    std::string in;
    bool begun = false;  // past BEGIN: binary, never answered
    bool reached = false;
    bool dead = false;
};

void send_all(int fd, const std::string& s) {
    ssize_t r = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    (void)r;
}

}  // namespace

StallingBus::StallingBus(std::string socket_path, Stage stage, std::string upstream)
    : path_(std::move(socket_path)), stage_(stage), upstream_(std::move(upstream)) {
    listen_fd_ = listen_at(path_);
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe");
    thread_ = std::thread([this] { run(); });
}

StallingBus::~StallingBus() {
    stop_ = true;
    ssize_t r = ::write(wake_[1], "x", 1);
    (void)r;
    thread_.join();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    ::unlink(path_.c_str());
}

void StallingBus::run() {
    std::vector<Conn> conns;
    const std::string ok = "OK 0123456789abcdef0123456789abcdef\r\n";
    while (!stop_) {
        std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
        const bool stalled = stalled_;
        for (const Conn& c : conns) {
            // A stalled relay reads nothing: the daemon's writes pile up in its socket.
            fds.push_back({c.fd, static_cast<short>(stalled ? 0 : POLLIN), 0});
            fds.push_back({c.up, static_cast<short>(c.up >= 0 ? POLLIN : 0), 0});
        }
        if (::poll(fds.data(), fds.size(), 100) < 0) continue;
        if (fds[1].revents & POLLIN) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0) {
                ++accepted_;
                Conn c;
                c.fd = fd;
                if (stage_ == Stage::RelayThenStall) {
                    c.up = connect_to(upstream_);
                    ++reached_;
                }
                conns.push_back(std::move(c));
            }
        }
        // fds beyond the first two map onto conns as they were when polled.
        const size_t polled = (fds.size() - 2) / 2;
        for (size_t i = 0; i < polled && i < conns.size(); ++i) {
            Conn& c = conns[i];
            const short re = fds[2 + 2 * i].revents;
            const short ue = fds[3 + 2 * i].revents;
            char buf[65536];
            if (c.up >= 0) {
                // Stalled: calls still reach the client, nothing it sends is read.
                if (!stalled && (re & (POLLIN | POLLHUP))) {
                    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
                    if (n > 0) send_all(c.up, std::string(buf, static_cast<size_t>(n)));
                    if (n == 0) c.dead = true;
                }
                if (ue & (POLLIN | POLLHUP)) {
                    ssize_t n = ::recv(c.up, buf, sizeof buf, 0);
                    if (n > 0) send_all(c.fd, std::string(buf, static_cast<size_t>(n)));
                    if (n == 0) c.dead = true;
                }
                continue;
            }
            if (stalled || !(re & (POLLIN | POLLHUP))) continue;
            ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
            if (n == 0) c.dead = true;
            if (n <= 0) continue;
            if (c.begun || stage_ == Stage::NoAuthReply) {
                if (!c.reached) {
                    c.reached = true;
                    ++reached_;
                }
                continue;  // read and never answered
            }
            c.in.append(buf, static_cast<size_t>(n));
            size_t eol;
            while (!c.begun && (eol = c.in.find("\r\n")) != std::string::npos) {
                std::string line = c.in.substr(0, eol);
                c.in.erase(0, eol + 2);
                if (!line.empty() && line[0] == '\0') line.erase(0, 1);
                if (line.rfind("AUTH", 0) == 0) {
                    if (stage_ == Stage::AuthThenStall) {
                        send_all(c.fd, ok);
                        if (!c.reached) {
                            c.reached = true;
                            ++reached_;
                        }
                        c.begun = true;  // nothing more is ever answered
                    } else {
                        send_all(c.fd, ok);
                    }
                } else if (line == "NEGOTIATE_UNIX_FD") {
                    send_all(c.fd, "AGREE_UNIX_FD\r\n");
                } else if (line == "BEGIN") {
                    c.begun = true;  // the Hello call that follows is never answered
                    if (!c.reached) {
                        c.reached = true;
                        ++reached_;
                    }
                }
            }
        }
        for (size_t i = conns.size(); i-- > 0;) {
            if (!conns[i].dead) continue;
            ::close(conns[i].fd);
            if (conns[i].up >= 0) ::close(conns[i].up);
            conns.erase(conns.begin() + static_cast<long>(i));
        }
    }
    for (Conn& c : conns) {
        ::close(c.fd);
        if (c.up >= 0) ::close(c.up);
    }
}

}  // namespace oomguard::bustest
