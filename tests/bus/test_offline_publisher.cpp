// Bus pieces that need no bus, the daemon's side: the per-caller rate limit and
// the BusPublisher (requests done at loop level, never a wait). ~50 ms.
#include <gtest/gtest.h>
#include <poll.h>

#include "bus/bus_publisher.hpp"
#include "bus/rate_limiter.hpp"
#include "daemon.hpp"
#include "support/fake_proc.hpp"
#include "support/files.hpp"
#include "support/rig_paths.hpp"
#include "support/state_host.hpp"

using namespace oomguard;

using oomguard::test::FakeProc;
using oomguard::test::MiB;
using oomguard::test::TempDir;

namespace {

constexpr uint64_t kNodeTotal = 16384 * MiB, kNodeAvailable = 4096 * MiB;

// <d>/oomguard.toml, with the kmsg and lock of a RigPaths in <d> unless the
// text sets them: the in-process daemon never takes the host's lock.
void write_config(const TempDir& d, const std::string& text) {
    oomguard::test::write_file(d.file("oomguard.toml"),
                               oomguard::test::RigPaths(d.path()).apply(text));
}

}  // namespace

// ---- the per-caller token bucket ------------------------------------------

TEST(RateLimiter, BurstThenRefillPerCaller) {
    RateLimiter r(20, 40);
    const Duration t0 = std::chrono::seconds(100);
    int ok = 0;
    for (int i = 0; i < 100; ++i) ok += r.admit(":1.1", t0);
    EXPECT_EQ(ok, 40) << "the burst";
    EXPECT_TRUE(r.admit(":1.2", t0)) << "another caller has its own bucket";
    ok = 0;
    for (int i = 0; i < 100; ++i) ok += r.admit(":1.1", t0 + std::chrono::milliseconds(500));
    EXPECT_EQ(ok, 10) << "20 a second refill";
    ok = 0;
    for (int i = 0; i < 100; ++i) ok += r.admit(":1.1", t0 + std::chrono::seconds(60));
    EXPECT_EQ(ok, 40) << "never more than the burst";
}

TEST(RateLimiter, ForgetsIdleCallersInsteadOfGrowing) {
    RateLimiter r(20, 40);
    Duration t = std::chrono::seconds(1);
    for (size_t i = 0; i < RateLimiter::kMaxCallers + 100; ++i) {
        r.admit(":1." + std::to_string(i), t);
        t += std::chrono::milliseconds(10);
    }
    EXPECT_LE(r.callers(), RateLimiter::kMaxCallers);
}

// ---- the daemon thread's half: requests done at loop level -----------------

TEST(BusPublisher, ReloadRequestsAreDoneByTheLoopAndAnswered) {
    TempDir d;
    FakeProc proc(d.file("proc"), kNodeTotal);  // a 16 GiB node, 4 GiB available
    proc.set_available(kNodeAvailable);
    const std::string cfg = d.path() + "/oomguard.toml";
    auto write_cfg = [&](const std::string& text) { write_config(d, text); };
    write_cfg("[memory]\nmin_available = \"500MiB\"\n[action]\nsysrq_trigger = \"" + d.path() +
              "/trigger\"\n[poll]\npsi = false\n[paths]\nproc = \"" + d.path() + "/proc\"\n");
    DaemonOptions o;
    o.config_path = cfg;
    o.log_target = LogTarget::Stderr;
    o.mlock = false;
    o.allow_insecure_config = true;
    Daemon daemon(o);
    ASSERT_TRUE(daemon.init());
    BusChannel ch;
    BusPublisher pub(daemon, ch);
    daemon.add_sink(&pub);  // as src/main.cpp does
    pub.on_config(daemon.state(), daemon.config());
    {
        std::lock_guard<std::mutex> g(ch.mutex);
        EXPECT_EQ(ch.version, 1u);
        EXPECT_EQ(ch.snapshot.config->memory.min_available.to_string(), "500 MiB");
        ch.requests.push_back({7, RequestKind::Reload});
        ch.requests.push_back({8, RequestKind::Reload});  // queued together: one reload
    }
    ch.to_daemon.wake();
    write_cfg("[memory]\nmin_available = \"600MiB\"\n[action]\nsysrq_trigger = \"" + d.path() +
              "/trigger\"\n[poll]\npsi = false\n[paths]\nproc = \"" + d.path() + "/proc\"\n");
    pub.dispatch(POLLIN);
    {
        std::lock_guard<std::mutex> g(ch.mutex);
        ASSERT_EQ(ch.results.size(), 2u);
        EXPECT_EQ(ch.results[0].id, 7u);
        EXPECT_TRUE(ch.results[0].ok()) << ch.results[0].error->message;
        EXPECT_EQ(ch.results[1].id, 8u);
        EXPECT_EQ(ch.snapshot.config->memory.min_available.to_string(), "600 MiB");
        ch.results.clear();
        ch.requests.push_back({9, RequestKind::Reload});
    }
    write_cfg("[memory]\nmin_available = 5\n");
    pub.dispatch(0);
    {
        std::lock_guard<std::mutex> g(ch.mutex);
        ASSERT_EQ(ch.results.size(), 1u);
        ASSERT_FALSE(ch.results[0].ok());
        EXPECT_NE(ch.results[0].error->message.find("min_available"), std::string::npos)
            << ch.results[0].error->message;
        EXPECT_EQ(ch.snapshot.config->memory.min_available.to_string(), "600 MiB")
            << "a bad config keeps the old one";
    }
}

TEST(BusPublisher, NeverWaitsForABusyChannel) {
    TempDir d;
    FakeProc proc(d.file("proc"), kNodeTotal);  // a 16 GiB node, 4 GiB available
    proc.set_available(kNodeAvailable);
    d.write("trigger", "");
    write_config(d, "[action]\nsysrq_trigger = \"" + d.file("trigger") +
                        "\"\n[poll]\npsi = false\n[paths]\nproc = \"" + d.path() + "/proc\"\n");
    DaemonOptions o;
    o.config_path = d.path() + "/oomguard.toml";
    o.log_target = LogTarget::Stderr;
    o.mlock = false;
    o.allow_insecure_config = true;
    Daemon daemon(o);
    ASSERT_TRUE(daemon.init());
    BusChannel ch;
    BusPublisher pub(daemon, ch);
    {
        std::lock_guard<std::mutex> held(ch.mutex);  // the bus thread is copying
        pub.on_warning(daemon.state());
        EXPECT_EQ(pub.deferred(), 1u);
        EXPECT_EQ(pub.poll_spec().timeout_ns, 1'000'000) << "tries again in 1 ms";
    }
    pub.dispatch(0);
    std::lock_guard<std::mutex> g(ch.mutex);
    EXPECT_EQ(ch.version, 1u);
    ASSERT_EQ(ch.events.size(), 1u);
    EXPECT_EQ(ch.events[0].kind, BusEvent::Kind::Warning);
    EXPECT_EQ(pub.poll_spec().timeout_ns, -1);
}

// Issue 17: an idle node publishes every second; the bus thread is woken (an
// eventfd write, a context switch) only when there is something to announce.
TEST(BusPublisher, WakesTheBusThreadOnlyWhenSomethingAnnouncedChanged) {
    TempDir d;
    FakeProc proc(d.file("proc"), kNodeTotal);  // a 16 GiB node, 4 GiB available
    proc.set_available(kNodeAvailable);
    d.write("trigger", "");
    write_config(d, "[action]\nsysrq_trigger = \"" + d.file("trigger") +
                        "\"\n[poll]\npsi = false\n[paths]\nproc = \"" + d.path() + "/proc\"\n");
    DaemonOptions o;
    o.config_path = d.path() + "/oomguard.toml";
    o.log_target = LogTarget::Stderr;
    o.mlock = false;
    o.allow_insecure_config = true;
    Daemon daemon(o);
    ASSERT_TRUE(daemon.init());
    BusChannel ch;
    BusPublisher pub(daemon, ch);
    // Wakes pending on the eventfd since the last call (its counter, then 0).
    auto wakes = [&] {
        uint64_t v = 0;
        return ::read(ch.to_bus.fd(), &v, sizeof v) == sizeof v ? v : 0;
    };
    pub.on_config(daemon.state(), daemon.config());
    EXPECT_EQ(wakes(), 1u) << "the first publication wakes the bus thread";
    for (int i = 0; i < 5; ++i) pub.on_state(daemon.state());
    EXPECT_EQ(wakes(), 0u) << "nothing changed: the bus thread sleeps on";
    {
        std::lock_guard<std::mutex> g(ch.mutex);
        EXPECT_EQ(ch.version, 1u) << "an unchanged state is not copied again";
    }
    pub.on_warning(daemon.state());
    EXPECT_EQ(wakes(), 1u) << "a signal to emit wakes it";
    pub.on_state(daemon.state());
    EXPECT_EQ(wakes(), 0u);
}

using oomguard::test::StateHost;

// A publisher on a StateHost (16 GiB, 4 GiB available) that has published its config.
struct Published {
    StateHost h;
    BusChannel ch;
    BusPublisher pub{h, ch};
    Published() {
        h.s.sample.mem_total = 16ull << 30;
        h.s.sample.mem_available = 4ull << 30;
        pub.on_config(h.s, h.c);
    }
};

// Issue 17: on an idle node each sample moves only samples_total. That goes
// through the channel's atomics (read by the bus thread for every method call),
// not a copy of the whole state; any other change is published as before.
TEST(BusPublisher, ASampleAloneMovesTheCountersNotTheSnapshot) {
    Published p;
    auto& [h, ch, pub] = p;
    ASSERT_EQ(ch.version, 1u);
    auto sample = [&] {
        ++h.s.samples_total;
        pub.on_state(h.s);
    };
    for (int i = 0; i < 3; ++i) sample();
    ++h.s.sample_errors_total;
    sample();
    EXPECT_EQ(ch.version, 1u);
    EXPECT_EQ(ch.samples_total.load(), 4u);
    EXPECT_EQ(ch.sample_errors_total.load(), 1u);
    // Unannounced fields still count as a change: swap, a counter, an error text.
    h.s.sample.swap_free += 4096;
    sample();
    EXPECT_EQ(ch.version, 2u) << "swap_free changed";
    EXPECT_EQ(ch.snapshot.state.sample.swap_free, 4096u);
    ++h.s.oom_requests_ignored_total;
    sample();
    EXPECT_EQ(ch.version, 3u) << "a counter no signal announces changed";
    h.s.last_error = "cannot read /proc/meminfo";
    sample();
    EXPECT_EQ(ch.version, 4u);
    EXPECT_EQ(ch.snapshot.state.last_error, h.s.last_error);
    sample();
    EXPECT_EQ(ch.version, 4u) << "back to samples alone";
    EXPECT_EQ(ch.samples_total.load(), h.s.samples_total);
    // A publication the busy channel deferred still goes out with the next sample.
    {
        std::lock_guard<std::mutex> held(ch.mutex);
        h.s.sample.mem_available -= 4096;
        sample();
    }
    EXPECT_EQ(ch.version, 4u);
    sample();
    EXPECT_EQ(ch.version, 5u);
    EXPECT_EQ(ch.snapshot.state.sample.mem_available, h.s.sample.mem_available);
}

// A request the loop could not fetch (the channel was busy) is fetched on the
// retry even when a publication went out in between (it cleared the publish retry).
TEST(BusPublisher, ARequestFetchThatMetABusyChannelIsRetriedAfterAPublication) {
    Published p;
    auto& [h, ch, pub] = p;
    {
        std::lock_guard<std::mutex> held(ch.mutex);  // the bus thread, queuing a Reload
        ch.requests.push_back({5, RequestKind::Reload});
        pub.dispatch(POLLIN);  // the wake arrives while it still holds the lock
    }
    h.s.sample.mem_available -= 4096;
    pub.on_state(h.s);  // a sample before the 1 ms retry: publishes
    EXPECT_EQ(ch.version, 2u);
    EXPECT_EQ(pub.poll_spec().timeout_ns, 1'000'000) << "the request still waits to be fetched";
    pub.dispatch(0);  // the retry
    std::lock_guard<std::mutex> g(ch.mutex);
    EXPECT_TRUE(ch.requests.empty());
    ASSERT_EQ(ch.results.size(), 1u);
    EXPECT_EQ(ch.results[0].id, 5u);
    EXPECT_TRUE(ch.results[0].ok());
    EXPECT_EQ(pub.poll_spec().timeout_ns, -1);
}
