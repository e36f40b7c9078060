// A bus that stalls at each stage must never hold the daemon's loop (issue 10,
// defect 1): the trigger still reaches the FIFO within a few milliseconds of
// the crossing, sampling goes on, and SIGINT/SIGTERM stop the daemon within
// ~1.5 s. The fake buses are StallingBus (stalling_bus.hpp); (e) is a real
// private dbus-daemon SIGSTOPped after registration. (f), the GetHeaviest flood
// of issue 10 defect 9, is in test_bus_flood.cpp.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <thread>

#include "bus_fixture.hpp"
#include "node_tree.hpp"
#include "stalling_bus.hpp"

using namespace oomguard::bustest;
namespace dbus = oomguard::dbus;

namespace {

// Samples every millisecond above the threshold (a huge assumed fill rate keeps
// the interval at min_interval), every 10 ms below it; one trigger per episode.
std::string fast_config(const BusRig& r, const NodeTree* tree) {
    return "[memory]\nmin_available = \"500MiB\"\nwarn_available = \"1000MiB\"\n"
           "recover_available = \"2000MiB\"\n"
           "[action]\nsysrq_trigger = \"" +
           r.fifo.path() +
           "\"\nrepeat_after = \"10s\"\n"
           "[poll]\nmin_interval = \"1ms\"\nidle_interval = \"1ms\"\nmax_interval = "
           "\"10ms\"\nfill_rate = "
           "\"1000GiB/s\"\npsi = false\n"
           "[kubernetes]\nlog_heaviest = false\n" +
           (tree ? "pod_logs_dir = \"" + tree->pod_logs_dir + "\"\n[paths]\ncgroup = \"" +
                       tree->cgroup_root + "\"\nkmsg = \"" + r.dir.file("kmsg") + "\"\n"
                 : std::string());
}

void start_daemon_on(BusRig& r, const std::string& bus_address, bool own_cgroups) {
    write_file(r.dir.file("kmsg"), "");
    std::vector<std::string> args = {"--config",   r.config_path,         "--proc-root",
                                     r.proc.dir(), "--log-target=stderr", "--no-mlock"};
    if (!own_cgroups) args.insert(args.end(), {"--cgroup-root", r.paths.cgroup_root});
    r.daemon.start(args,
                   {{"DBUS_SYSTEM_BUS_ADDRESS", bus_address}, {"NOTIFY_SOCKET", r.notify.path()}},
                   r.dir.file("daemon.log"));
    if (!r.notify.wait_for("READY=1", 5s))
        throw std::runtime_error("oomguard not READY:\n" + r.daemon.log());
    r.drain_notify();
}

std::string show(const std::vector<double>& v) {
    std::string s;
    char b[32];
    for (double x : v) {
        std::snprintf(b, sizeof b, "%s%.2f", s.empty() ? "" : " ", x);
        s += b;
    }
    return s + " ms";
}

// Calls whose replies are large (GetHeaviest(1000) on a 1000-pod node), sent
// asynchronously from `conn`: sd-bus gives its socket an 8 MiB send buffer, and
// signals alone would take minutes to fill it. Replies are ignored.
void call_flood(sdbus::IConnection& conn, int n) {
    auto proxy = sdbus::createProxy(conn, dbus::kBusName, dbus::kObjectPath);
    for (int i = 0; i < n; ++i)
        proxy->callMethodAsync("GetHeaviest")
            .onInterface(dbus::kInterface)
            .withArguments(uint32_t{1000})
            .uponReplyInvoke([](const sdbus::Error*) {});
    const auto end = Clock::now() + 200ms;
    while (Clock::now() < end)
        if (!conn.processPendingRequest()) std::this_thread::sleep_for(1ms);
}

// Many short episodes, each with Warning, Triggered, Recovered and
// PropertiesChanged: enough writes to fill a socket nobody reads.
void flood_episodes(BusRig& r, std::chrono::milliseconds d) {
    const auto end = Clock::now() + d;
    while (Clock::now() < end) {
        // Above the recovery level the daemon polls every millisecond, below the
        // threshold every 10 ms: hold each level until it was sampled.
        r.proc.set_available(400 * MiB);
        r.fifo.wait_byte(200ms);
        r.proc.set_available(4096 * MiB);
        std::this_thread::sleep_for(12ms);
    }
    std::this_thread::sleep_for(50ms);
    r.fifo.drain();
}

// One 1000-pod node for all cases that need it (building it takes seconds).
const NodeTree& shared_tree() {
    static NodeTree tree(1000);  // removed at exit
    return tree;
}

enum class Case { NoAuthReply, AuthThenStall, NoHelloReply, RelayThenStall, FrozenDbusDaemon };

struct Param {
    Case c;
    int signal;
};

std::string name_of(const testing::TestParamInfo<Param>& p) {
    static const char* names[] = {"NoAuthReply", "AuthThenStall", "NoHelloReply",
                                  "StopsReadingAfterRegistration", "FrozenDbusDaemon"};
    return std::string(names[static_cast<int>(p.param.c)]) +
           (p.param.signal == SIGINT ? "_SIGINT" : "_SIGTERM");
}

class StalledBus : public testing::TestWithParam<Param> {};

}  // namespace

TEST_P(StalledBus, TriggerOnTimeSamplingGoesOnAndSignalsStopTheDaemon) {
    SKIP_UNLESS_READY(false);
    const Param p = GetParam();
    const bool real_bus = p.c == Case::RelayThenStall || p.c == Case::FrozenDbusDaemon;
    BusRig r(BusPolicy::Shipped, real_bus);
    const NodeTree* tree = real_bus ? &shared_tree() : nullptr;
    r.write_config(fast_config(r, tree));
    std::unique_ptr<StallingBus> fake;
    std::string address = r.bus.address();
    const std::string fake_path = r.dir.file("stalling.sock");
    switch (p.c) {
        case Case::NoAuthReply:
            fake = std::make_unique<StallingBus>(fake_path, StallingBus::Stage::NoAuthReply);
            break;
        case Case::AuthThenStall:
            fake = std::make_unique<StallingBus>(fake_path, StallingBus::Stage::AuthThenStall);
            break;
        case Case::NoHelloReply:
            fake = std::make_unique<StallingBus>(fake_path, StallingBus::Stage::NoHelloReply);
            break;
        case Case::RelayThenStall:
            fake = std::make_unique<StallingBus>(fake_path, StallingBus::Stage::RelayThenStall,
                                                 r.bus.socket());
            break;
        case Case::FrozenDbusDaemon:
            break;
    }
    if (fake) address = fake->address();

    const auto t0 = Clock::now();
    start_daemon_on(r, address, real_bus);
    std::printf("READY after %.1f ms\n", as_ms(Clock::now() - t0));

    // Reach the stage: the daemon is now inside (or waiting on) the stalled step.
    std::unique_ptr<sdbus::IConnection> caller;
    switch (p.c) {
        case Case::NoAuthReply:
        case Case::NoHelloReply:
            ASSERT_TRUE(r.daemon.running());
            for (int i = 0; i < 200 && fake->reached() < 1; ++i) std::this_thread::sleep_for(10ms);
            ASSERT_GE(fake->reached(), 1) << r.daemon.log();
            break;
        case Case::AuthThenStall:
            // The probe and then sd-bus's own connection got their OK.
            for (int i = 0; i < 300 && fake->reached() < 2; ++i) std::this_thread::sleep_for(10ms);
            ASSERT_GE(fake->reached(), 2) << r.daemon.log();
            break;
        case Case::RelayThenStall:
            ASSERT_TRUE(wait_name(true, 5s)) << r.daemon.log();
            fake->stall();
            caller = dbus::open_system_bus();
            call_flood(*caller, 100);
            break;
        case Case::FrozenDbusDaemon:
            ASSERT_TRUE(wait_name(true, 5s)) << r.daemon.log();
            // The calls reach the daemon, then the bus daemon freezes with the
            // replies (and the signals after them) still to be read.
            caller = dbus::open_system_bus();
            call_flood(*caller, 100);
            r.bus.freeze();
            break;
    }
    std::this_thread::sleep_for(100ms);
    if (real_bus) {
        std::printf("stalled and flooded after %.0f ms\n", as_ms(Clock::now() - t0));
        flood_episodes(r, 3000ms);
        std::printf("%zu episodes with the bus stalled\n", count_of(r.daemon.log(), "<4>trigger:"));
    }

    // Sampling goes on and the trigger is on time, several times over.
    std::vector<double> lat =
        crossing_latencies(r, 7, 30ms);  // sampled every 10 ms below: re-armed
    std::printf("trigger latency with the bus stalled: %s (median %.2f ms)\n", show(lat).c_str(),
                median(lat));
    for (double l : lat) ASSERT_LT(l, 1000) << "a crossing got no trigger\n" << r.daemon.log();
    EXPECT_LT(median(lat), as_ms(kMedianBound)) << r.daemon.log();

    // The signal is handled although the bus thread may be stuck in sd-bus.
    const auto s0 = Clock::now();
    r.daemon.signal(p.signal);
    const int rc = r.daemon.wait_exit(5s);
    const double stop_ms = as_ms(Clock::now() - s0);
    std::printf("stopped %.0f ms after %s\n", stop_ms, p.signal == SIGINT ? "SIGINT" : "SIGTERM");
    EXPECT_EQ(rc, 0) << r.daemon.log();
    EXPECT_LT(stop_ms, 1500) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("<5>stop: stopping after "), std::string::npos) << r.daemon.log();
    if (p.c == Case::FrozenDbusDaemon) r.bus.thaw();
}

INSTANTIATE_TEST_SUITE_P(
    EachStage, StalledBus,
    testing::Values(Param{Case::NoAuthReply, SIGTERM}, Param{Case::NoAuthReply, SIGINT},
                    Param{Case::AuthThenStall, SIGTERM}, Param{Case::AuthThenStall, SIGINT},
                    Param{Case::NoHelloReply, SIGTERM}, Param{Case::NoHelloReply, SIGINT},
                    Param{Case::RelayThenStall, SIGTERM}, Param{Case::RelayThenStall, SIGINT},
                    Param{Case::FrozenDbusDaemon, SIGTERM}, Param{Case::FrozenDbusDaemon, SIGINT}),
    name_of);
