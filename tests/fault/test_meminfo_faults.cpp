// Fault injection with the real binary, a broken meminfo: reordered fields,
// MemAvailable missing mid-run, an overflowing number, an emptied file. The
// daemon logs once, keeps its state and recovers. ~2 s.
#include <gtest/gtest.h>

#include <thread>

#include "fault_rig.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// meminfo

namespace {

std::string meminfo(uint64_t avail, bool with_available = true, bool reordered = false) {
    std::string total = kb_line("MemTotal", 16384 * MiB), free = kb_line("MemFree", avail);
    std::string available = with_available ? kb_line("MemAvailable", avail) : "";
    std::string rest = kb_line("Buffers", 0) + kb_line("Cached", 4096 * MiB) +
                       kb_line("SwapTotal", 0) + kb_line("SwapFree", 0) +
                       "HugePages_Total:       0\n" + kb_line("Hugepagesize", 2 * MiB);
    if (reordered) return rest + available + free + total;
    return total + free + available + rest;
}

}  // namespace

TEST(MeminfoFault, ReorderedFieldsWork) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.write_text(meminfo(2048 * MiB, true, true));
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    EXPECT_TRUE(r.notify.wait_for("STATUS=MemAvailable 2.0 GiB", 2s));
    r.proc.write_text(meminfo(600 * MiB, true, true));
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(f_count(c.trigger), 0u) << r.daemon.log();
    r.proc.write_text(meminfo(450 * MiB, true, true));
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

TEST(MeminfoFault, MemAvailableMissingMidRunLogsOnceKeepsStateAndRecovers) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.write_text(meminfo(2048 * MiB));
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    // MemAvailable disappears while memory is low: no reading, so no trigger on
    // a guess, and one error for the whole outage (not one per poll).
    r.proc.write_text(meminfo(100 * MiB, false));
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
    r.proc.write_text(meminfo(450 * MiB));
    EXPECT_TRUE(r.daemon.wait_log("reading MemAvailable works again", 2s)) << r.daemon.log();
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    // A second outage is logged again (once).
    r.proc.write_text(meminfo(450 * MiB, false));
    EXPECT_TRUE(r.daemon.wait_log("cannot read MemAvailable", 2s, 2)) << r.daemon.log();
}

TEST(MeminfoFault, OverflowingNumberIsAnErrorNotAHugeValue) {
    // A wrapped 64-bit value used to read as a plausible MemAvailable.
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.write_text(meminfo(2048 * MiB));
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.write_text(kb_line("MemTotal", 16384 * MiB) + "MemAvailable:   18014398509481985 kB\n" +
                      kb_line("SwapFree", 0));
    EXPECT_TRUE(r.daemon.wait_log("one too large", 2s)) << r.daemon.log();
    r.proc.write_text(meminfo(450 * MiB));
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

TEST(MeminfoFault, EmptiedMidRun) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.write_text(meminfo(2048 * MiB));
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.write_text("");
    EXPECT_TRUE(r.daemon.wait_log("no MemTotal line", 2s)) << r.daemon.log();
    r.proc.write_text(meminfo(450 * MiB));
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}
