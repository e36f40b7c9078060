// Bus pieces that need no bus, the way to it: the system bus address parser and
// the bus probe against a unix socket the test serves. ~10 ms.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>

#include "bus/bus_probe.hpp"
#include "bus/system_bus_address.hpp"
#include "support/files.hpp"

using namespace oomguard;

namespace {

using oomguard::test::TempDir;

int listen_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0)
        return -1;
    return fd;
}

Result<BusProbe::Step> advance_for(BusProbe& p, int ms) {
    pollfd f{p.fd(), POLLIN, 0};
    ::poll(&f, 1, ms);
    return p.advance(f.revents);
}

// The step, or "error: <message>", for EXPECT_EQ.
std::string step_of(const Result<BusProbe::Step>& r) {
    if (!r) return "error: " + r.error().message;
    return *r == BusProbe::Step::Answered ? "answered" : "pending";
}

}  // namespace

TEST(SystemBusAddress, UnixPathIsExtractedAndDecoded) {
    EXPECT_EQ(unix_socket_path("unix:path=/run/dbus/system_bus_socket"),
              "/run/dbus/system_bus_socket");
    EXPECT_EQ(unix_socket_path("unix:path=/tmp/a%20b,guid=0123"), "/tmp/a b");
    EXPECT_EQ(unix_socket_path("unix:guid=0123,path=/x"), "/x");
    EXPECT_EQ(unix_socket_path("unix:path=/x;"), "/x");
    EXPECT_EQ(unix_socket_path("unix:abstract=/x"), std::nullopt);
    EXPECT_EQ(unix_socket_path("tcp:host=localhost,port=1"), std::nullopt);
    EXPECT_EQ(unix_socket_path("unix:path=/a;unix:path=/b"), std::nullopt);
    EXPECT_EQ(unix_socket_path("unix:path=/bad%2"), std::nullopt);
    EXPECT_EQ(unix_socket_path("unix:path=/bad%zz"), std::nullopt);
    EXPECT_EQ(unix_socket_path("unix:path="), std::nullopt);
    EXPECT_EQ(unix_socket_path(""), std::nullopt);
}

TEST(SystemBusAddress, EnvironmentOverridesTheDefault) {
    ::setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/tmp/x", 1);
    EXPECT_EQ(system_bus_address(), "unix:path=/tmp/x");
    ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
    EXPECT_EQ(system_bus_address(), kDefaultSystemBusAddress);
}

TEST(BusProbe, AnsweredWhenTheDaemonSaysOk) {
    TempDir d;
    std::string sock = d.path() + "/bus.sock";
    int lfd = listen_unix(sock);
    ASSERT_GE(lfd, 0);
    BusProbe p;
    ASSERT_TRUE(p.start(sock, 1000).ok());
    EXPECT_EQ(step_of(advance_for(p, 50)), "pending") << "nobody answered yet";
    int c = ::accept(lfd, nullptr, nullptr);
    char buf[64] = {};
    ssize_t n = ::read(c, buf, sizeof buf);
    // NUL, then the EXTERNAL mechanism with the uid "1000" hex-encoded.
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)),
              std::string("\0AUTH EXTERNAL 31303030\r\n", 25));
    ASSERT_EQ(::write(c, "OK 0123", 7), 7);
    EXPECT_EQ(step_of(advance_for(p, 100)), "pending") << "half a line";
    ASSERT_EQ(::write(c, "abcdef\r\n", 8), 8);
    EXPECT_EQ(step_of(advance_for(p, 100)), "answered");
    ::close(c);
    ::close(lfd);
}

TEST(BusProbe, FailsOnRejectionHangUpAndMissingSocket) {
    TempDir d;
    std::string sock = d.path() + "/bus.sock";
    BusProbe p;
    Status st = p.start(sock, 0);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message, "connect " + sock + ": No such file or directory");

    int lfd = listen_unix(sock);
    ASSERT_TRUE(p.start(sock, 0).ok());
    int c = ::accept(lfd, nullptr, nullptr);
    ASSERT_EQ(::write(c, "REJECTED EXTERNAL\r\n", 19), 19);
    EXPECT_EQ(step_of(advance_for(p, 100)),
              "error: the bus daemon at " + sock + " refused authentication: REJECTED EXTERNAL");
    ::close(c);

    ASSERT_TRUE(p.start(sock, 0).ok());
    c = ::accept(lfd, nullptr, nullptr);
    ::close(c);
    EXPECT_EQ(step_of(advance_for(p, 100)),
              "error: the bus daemon at " + sock + " closed the connection");
    ::close(lfd);
}
