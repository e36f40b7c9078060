// The daemon's decisions on an injected clock (issue 11): the prediction's
// freshness at a trigger and the watchdog cadence, exact to the nanosecond and
// without a sleep. run() after request_stop() does the start and one sample,
// then returns without waiting in ppoll(); reload() samples again.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "app/prediction_fields.hpp"
#include "core/clock.hpp"
#include "daemon.hpp"
#include "support/fake_proc.hpp"
#include "support/files.hpp"

using namespace oomguard;
using oomguard::test::FakeProc;
using oomguard::test::MiB;
using oomguard::test::TempDir;

namespace {

// Far from any real uptime: a reading of the real clock could not pass for it.
constexpr Duration kStart = std::chrono::hours(24 * 3650);

// A node with MemAvailable 100 MiB (below = the 500 MiB threshold: a trigger at
// the first sample, in dry-run) or 4 GiB, and a config that keeps everything
// in the temp dir.
struct Node {
    TempDir dir;
    FakeProc proc{dir.file("proc"), 16384 * MiB};
    explicit Node(bool below) {
        proc.set_available(below ? 100 * MiB : 4096 * MiB);
        dir.write("oomguard.toml",
                  "[memory]\nmin_available = \"500MiB\"\n"
                  "[action]\nmode = \"dry-run\"\nsysrq_trigger = \"" +
                      dir.file("trigger") +
                      "\"\n"
                      "[poll]\npsi = false\n"
                      "[paths]\nproc = \"" +
                      proc.dir() + "\"\nlock = \"" + dir.file("lock") + "\"\n");
        dir.write("trigger", "");
    }
    DaemonOptions options() const {
        DaemonOptions o;
        o.config_path = dir.file("oomguard.toml");
        o.log_target = LogTarget::Stderr;
        o.mlock = false;
        o.allow_insecure_config = true;
        return o;
    }
};

struct TriggerSink final : EventSink {
    std::vector<int64_t> predicted;  // trigger_prediction.pid at each trigger
    void on_trigger(const DaemonState& s, const TriggerReport&) override {
        predicted.push_back(s.trigger_prediction.pid);
    }
};

PredictedTask prediction_at(Duration at) {
    PredictedTask p;
    p.pid = 4242;
    p.comm = "hog";
    p.oom_score = 900;
    p.at = at;
    return p;
}

// One run (start, one sample, which triggers) with `p` recorded before it: the
// pid the trigger took as its prediction, and the stderr of the run.
std::pair<int64_t, std::string> trigger_with(const PredictedTask& p, Duration now) {
    Node node(true);
    ManualClock clock(now);
    Daemon d(node.options(), clock);
    if (!d.init()) return {-1, "init failed"};
    TriggerSink sink;
    d.add_sink(&sink);
    d.record_prediction(p);
    d.request_stop();
    ::testing::internal::CaptureStderr();
    const int rc = d.run();
    std::string err = ::testing::internal::GetCapturedStderr();
    if (rc != 0 || sink.predicted.size() != 1) return {-2, err};
    return {sink.predicted[0], err};
}

bool has(const std::string& s, const std::string& needle) {
    return s.find(needle) != std::string::npos;
}

}  // namespace

TEST(DaemonClock, ThePredictionIsFreshUpToKPredictionFreshOnTheDaemonsClock) {
    // Exactly kPredictionFresh old: still used, and named in the trigger entry.
    auto [pid, err] = trigger_with(prediction_at(kStart - kPredictionFresh), kStart);
    EXPECT_EQ(pid, 4242) << err;
    EXPECT_TRUE(has(err, "the kernel's likely victim: pid 4242 (hog), oom_score 900")) << err;

    // One nanosecond older: not used.
    std::tie(pid, err) = trigger_with(
        prediction_at(kStart - kPredictionFresh - std::chrono::nanoseconds(1)), kStart);
    EXPECT_EQ(pid, 0) << err;
    EXPECT_TRUE(has(err, "dry-run: would ask the kernel OOM killer")) << err;
    EXPECT_FALSE(has(err, "likely victim")) << err;

    // From the future (another clock's reading): not used either.
    std::tie(pid, err) = trigger_with(prediction_at(kStart + std::chrono::nanoseconds(1)), kStart);
    EXPECT_EQ(pid, 0) << err;
}

TEST(DaemonClock, TheWatchdogIsPingedEveryQuarterIntervalOfTheDaemonsClock) {
    Node node(false);
    // Our own NOTIFY_SOCKET, and WATCHDOG_USEC for this process: 4 s, a ping per second.
    const std::string sock_path = node.dir.file("notify");
    int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(sock, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, sock_path.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ::setenv("NOTIFY_SOCKET", sock_path.c_str(), 1);
    ::setenv("WATCHDOG_USEC", "4000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    ManualClock clock(kStart);
    Daemon d(node.options(), clock);
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ASSERT_TRUE(d.init());
    // The WATCHDOG=1 datagrams sent since the last call.
    auto pings = [&] {
        int n = 0;
        char buf[1024];
        for (ssize_t r; (r = ::recv(sock, buf, sizeof buf, 0)) > 0;)
            if (std::string(buf, static_cast<size_t>(r)) == "WATCHDOG=1") ++n;
        return n;
    };

    d.request_stop();
    ::testing::internal::CaptureStderr();
    ASSERT_EQ(d.run(), 0);
    // The first sample pings, and run() once more after READY=1.
    EXPECT_EQ(pings(), 2);

    // Each reload samples once: a ping when a quarter interval has passed since the last.
    clock.advance(std::chrono::milliseconds(1000) - std::chrono::nanoseconds(1));
    ASSERT_TRUE(d.reload());
    EXPECT_EQ(pings(), 0) << "1 ns short of a quarter interval";
    clock.advance(std::chrono::nanoseconds(1));
    ASSERT_TRUE(d.reload());
    EXPECT_EQ(pings(), 1) << "a quarter interval since the last ping";
    clock.advance(std::chrono::milliseconds(500));
    ASSERT_TRUE(d.reload());
    EXPECT_EQ(pings(), 0);
    clock.advance(std::chrono::seconds(60));  // a stalled loop: one ping, not one per second missed
    ASSERT_TRUE(d.reload());
    EXPECT_EQ(pings(), 1);
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_TRUE(has(err, "reloaded " + node.dir.file("oomguard.toml"))) << err;
    ::close(sock);
}
