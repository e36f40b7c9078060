// Fault injection with the real binary, a broken meminfo: reordered fields,
// MemAvailable missing mid-run, an overflowing number, an emptied file. The
// daemon logs once, keeps its state and recovers. ~2 s.
#include <gtest/gtest.h>

#include <thread>

#include "fault_rig.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// meminfo: the rig's FakeProc writes it (support/fake_proc.hpp), the broken
// layouts too; an overflowing number is raw text (FakeProc::write_text).

namespace {

constexpr uint64_t kTotal = 16384 * MiB;

}  // namespace

TEST(MeminfoFault, ReorderedFieldsWork) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.meminfo(kTotal, 2048 * MiB, MeminfoLayout::Reordered);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    EXPECT_TRUE(r.notify.wait_for("STATUS=MemAvailable 2.0 GiB", 2s));
    r.proc.meminfo(kTotal, 600 * MiB, MeminfoLayout::Reordered);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(f_count(c.trigger), 0u) << r.daemon.log();
    r.proc.meminfo(kTotal, 450 * MiB, MeminfoLayout::Reordered);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

TEST(MeminfoFault, MemAvailableMissingMidRunLogsOnceKeepsStateAndRecovers) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.meminfo(kTotal, 2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    // MemAvailable disappears while memory is low: no reading, so no trigger on
    // a guess, and one error for the whole outage (not one per poll).
    r.proc.meminfo(kTotal, 100 * MiB, MeminfoLayout::NoMemAvailable);
    ASSERT_TRUE(r.daemon.wait_log("cannot read MemAvailable", 2s)) << r.daemon.log();
    std::this_thread::sleep_for(600ms);
    EXPECT_EQ(r.daemon.log_count("cannot read MemAvailable"), 1u) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("no MemAvailable line"), std::string::npos) << r.daemon.log();
    EXPECT_EQ(f_count(c.trigger), 0u);
    EXPECT_TRUE(r.daemon.running());
    // The last good state is kept: STATUS still shows the last reading.
    r.notify.pump(20ms);
    std::string last_status;
    for (const auto& m : r.notify.messages())
        if (m.find("STATUS=") != std::string::npos) last_status = m;
    EXPECT_NE(last_status.find("MemAvailable 2.0 GiB"), std::string::npos) << last_status;
    // It comes back, low: recovery is logged and the trigger fires.
    r.proc.meminfo(kTotal, 450 * MiB);
    EXPECT_TRUE(r.daemon.wait_log("reading MemAvailable works again", 2s)) << r.daemon.log();
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    // A second outage is logged again (once).
    r.proc.meminfo(kTotal, 450 * MiB, MeminfoLayout::NoMemAvailable);
    EXPECT_TRUE(r.daemon.wait_log("cannot read MemAvailable", 2s, 2)) << r.daemon.log();
}

TEST(MeminfoFault, OverflowingNumberIsAnErrorNotAHugeValue) {
    // A wrapped 64-bit value used to read as a plausible MemAvailable.
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.meminfo(kTotal, 2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.write_text(
        "MemTotal:           16777216 kB\nMemAvailable:   18014398509481985 kB\n"
        "SwapFree:                  0 kB\n");
    EXPECT_TRUE(r.daemon.wait_log("one too large", 2s)) << r.daemon.log();
    r.proc.meminfo(kTotal, 450 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

TEST(MeminfoFault, EmptiedMidRun) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.meminfo(kTotal, 2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.write_text("");
    EXPECT_TRUE(r.daemon.wait_log("no MemTotal line", 2s)) << r.daemon.log();
    r.proc.meminfo(kTotal, 450 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}
