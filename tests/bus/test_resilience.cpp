// The bus is missing, restarts, or freezes while oomguard runs: READY does not
// wait for it, the trigger still fires (to the test's FIFO) throughout, and the
// daemon registers org.oomguard1 again once the bus is back.
#include <gtest/gtest.h>

#include <thread>

#include "bus_fixture.hpp"

using namespace oomguard::bustest;
namespace dbus = oomguard::dbus;

namespace {

template <typename D>
long long ms(D d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

TEST(BusResilience, StartsWithoutABusAndRegistersWhenItAppears) {
    SKIP_UNLESS_READY(false);
    BusRig r(BusPolicy::Shipped, /*start_bus=*/false);
    auto t0 = Clock::now();
    r.start_daemon({}, /*wait_for_name=*/false);
    auto ready = Clock::now() - t0;
    std::printf("READY without a bus after %lld ms\n", ms(ready));
    EXPECT_LT(ready, 2s) << "READY waited for the bus";
    ASSERT_TRUE(r.daemon.wait_log("D-Bus: cannot register org.oomguard1", 2s)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("No such file or directory"), std::string::npos)
        << r.daemon.log();

    // Protecting all along.
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(r.fifo.wait_byte(1s)) << "no trigger without a bus\n" << r.daemon.log();
    r.proc.set_available(4096 * MiB);
    ASSERT_TRUE(r.daemon.wait_log(kRecoveredEntry, 2s)) << r.daemon.log();

    // Retries (100ms, 200ms, 400ms, ...) are not logged again.
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(r.daemon.log_count("D-Bus: cannot register"), 1u) << r.daemon.log();

    auto t1 = Clock::now();
    r.bus.start();
    ASSERT_TRUE(wait_name(true, 8s)) << r.daemon.log();
    std::printf("registered %lld ms after the bus came up\n", ms(Clock::now() - t1));
    EXPECT_TRUE(r.daemon.wait_log("D-Bus: org.oomguard1 registered on " + r.bus.address(), 1s))
        << r.daemon.log();
    BusClient client;
    EXPECT_EQ(client.proxy().TriggerCount(), 1u);
    EXPECT_EQ(client.proxy().State(), "ok");
}

TEST(BusResilience, ReRegistersAfterTheBusRestartsAndTriggersDuringTheOutage) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    {
        BusClient client;
        EXPECT_EQ(client.proxy().State(), "ok");
    }
    r.bus.kill();
    ASSERT_TRUE(r.daemon.wait_log("D-Bus: lost the connection", 2s)) << r.daemon.log();

    // The outage: the trigger still fires.
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(r.fifo.wait_byte(1s)) << "no trigger during the bus outage\n" << r.daemon.log();
    r.proc.set_available(4096 * MiB);
    ASSERT_TRUE(r.daemon.wait_log(kRecoveredEntry, 2s));
    std::this_thread::sleep_for(500ms);
    EXPECT_TRUE(r.daemon.running());

    auto t1 = Clock::now();
    r.bus.start();
    ASSERT_TRUE(wait_name(true, 8s)) << r.daemon.log();
    std::printf("re-registered %lld ms after the bus restarted\n", ms(Clock::now() - t1));
    EXPECT_TRUE(r.daemon.wait_log("D-Bus: org.oomguard1 registered again", 1s)) << r.daemon.log();

    // The state kept through the outage, and signals flow on the new connection.
    BusClient client;
    EXPECT_EQ(client.proxy().TriggerCount(), 1u);
    EXPECT_GT(client.proxy().LastTrigger(), 0u);
    client.pump(50ms);
    r.proc.set_available(450 * MiB);
    ASSERT_TRUE(client.wait_signal("Triggered", 2s)) << r.daemon.log();
    EXPECT_TRUE(r.fifo.wait_byte(1s));
    r.proc.set_available(4096 * MiB);
    ASSERT_TRUE(client.wait_signal("Recovered", 2s));

    // A second restart right away: the backoff starts small again.
    r.bus.kill();
    ASSERT_TRUE(r.daemon.wait_log("D-Bus: lost the connection", 2s, 2));
    auto t2 = Clock::now();
    r.bus.start();
    ASSERT_TRUE(wait_name(true, 3s)) << r.daemon.log();
    EXPECT_LT(Clock::now() - t2, 2s);
    EXPECT_EQ(r.daemon.log_count("registered again"), 2u) << r.daemon.log();
}

TEST(BusResilience, AFrozenBusDaemonNeverDelaysTheTrigger) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    // Alive but not answering (as a bus daemon stalled under memory pressure):
    // its socket accepts connections, nothing replies.
    r.bus.freeze();
    auto t0 = Clock::now();
    r.start_daemon({}, /*wait_for_name=*/false);
    EXPECT_LT(Clock::now() - t0, 2s);
    r.proc.set_available(400 * MiB);
    auto crossed = Clock::now();
    auto got = r.fifo.wait_byte(1s);
    ASSERT_TRUE(got.has_value()) << "the frozen bus blocked the trigger\n" << r.daemon.log();
    std::printf("trigger latency with a frozen bus daemon: %lld ms\n", ms(*got - crossed));
    EXPECT_LT(*got - crossed, 500ms);
    ASSERT_TRUE(r.daemon.wait_log("the bus daemon did not answer within 1s", 3s)) << r.daemon.log();
    r.proc.set_available(4096 * MiB);
    ASSERT_TRUE(r.daemon.wait_log(kRecoveredEntry, 2s));

    r.bus.thaw();
    ASSERT_TRUE(wait_name(true, 8s)) << r.daemon.log();
    BusClient client;
    EXPECT_EQ(client.proxy().TriggerCount(), 1u);

    // Frozen again while registered: signals queue up, the trigger does not wait.
    client.pump(50ms);
    r.bus.freeze();
    r.proc.set_available(450 * MiB);
    EXPECT_TRUE(r.fifo.wait_byte(1s)) << "the frozen bus blocked the trigger\n" << r.daemon.log();
    r.bus.thaw();
    EXPECT_TRUE(client.wait_signal("Triggered", 3s)) << r.daemon.log();
    EXPECT_TRUE(client.name_owned());
    EXPECT_EQ(client.proxy().TriggerCount(), 2u);
}

TEST(BusResilience, TheNameTakenByAnotherConnectionIsRetried) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    // Someone else (root) holds org.oomguard1.
    auto squatter = oomguard::dbus::open_system_bus();
    {
        auto driver = oomguard::dbus::bus_driver_proxy(*squatter);
        uint32_t reply = 0;
        driver->callMethod("RequestName")
            .onInterface("org.freedesktop.DBus")
            .withArguments(std::string(dbus::kBusName), uint32_t{4})
            .storeResultsTo(reply);
        ASSERT_EQ(reply, 1u);
    }
    r.start_daemon({}, /*wait_for_name=*/false);
    ASSERT_TRUE(r.daemon.wait_log("is owned by another connection", 3s)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(r.fifo.wait_byte(1s)) << r.daemon.log();
    r.proc.set_available(4096 * MiB);
    squatter.reset();  // the name is free now
    ASSERT_TRUE(r.daemon.wait_log("D-Bus: org.oomguard1 registered", 8s)) << r.daemon.log();
    BusClient client;
    EXPECT_EQ(client.proxy().TriggerCount(), 1u);
}
