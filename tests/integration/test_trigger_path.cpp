// The trigger path with the real binary (issue 10): a failed write is retried
// within milliseconds, not after repeat_after; a broken meminfo keeps the
// watchdog fed and its error is cleared once reading works again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "support/support.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

namespace {

std::string config(const std::string& trigger) {
    return "[memory]\nmin_available = \"500MiB\"\n[action]\nsysrq_trigger = \"" + trigger +
           "\"\nrepeat_after = \"1h\"\n[poll]\nmin_interval = \"1ms\"\nmax_interval = \"100ms\"\n"
           "psi = false\n[kubernetes]\nlog_heaviest = false\n";
}

struct Rig {
    TempDir dir;
    FakeProc proc{dir.file("proc"), 16384 * MiB};
    RigPaths paths{dir.path()};  // hermetic: no host cgroups, kmsg, lock or system bus
    NotifySocket notify{dir.file("notify.sock")};
    DaemonProcess daemon;

    void start(const std::string& cfg, std::map<std::string, std::string> env = {}) {
        dir.write("oomguard.toml", paths.apply(cfg));
        for (const auto& [k, v] : paths.env(notify.path())) env.emplace(k, v);
        daemon.start(paths.daemon_args(dir.file("oomguard.toml"), proc.dir()), env,
                     dir.file("daemon.log"));
        ASSERT_TRUE(notify.wait_for("READY=1", 5s)) << daemon.log();
    }
};

}  // namespace

// Defect 3: a FIFO without a reader (ENXIO) fails the first write. With
// repeat_after = 1h the old daemon waited an hour; the retry must come within
// the backoff (10 ms doubling, capped at 1 s) and each failure is counted.
TEST(TriggerPath, FailedWriteIsRetriedSoonNotAfterRepeatAfter) {
    Rig r;
    const std::string fifo = r.dir.file("trigger.fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    r.proc.set_available(2048 * MiB);
    r.start(config(fifo));
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("trigger failed", 2s, 3)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("FIFO has no reader"), std::string::npos) << r.daemon.log();
    // A reader appears (the kernel side comes back): the next retry lands.
    int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    const auto opened = Clock::now();
    auto read_bytes = [&] {
        char b[64];
        ssize_t n = ::read(reader, b, sizeof b);
        return n > 0 ? static_cast<size_t>(n) : size_t{0};
    };
    size_t got = 0;
    while (got == 0 && Clock::now() - opened < 3s) {
        std::this_thread::sleep_for(1ms);
        got = read_bytes();
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - opened).count();
    ASSERT_EQ(got, 1u) << "no retry after the failed write\n" << r.daemon.log();
    std::printf("[ info ] retry landed %lld ms after the reader appeared\n",
                static_cast<long long>(ms));
    EXPECT_LT(ms, 1500) << "the retry must come within the capped backoff (1 s)";
    // Exactly once: after the success the next action waits for repeat_after (1h).
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(read_bytes(), 0u) << "acted again after a success";
    ::close(reader);
    EXPECT_NE(r.daemon.log().find("OOMGUARD_OUTCOME=failed"), std::string::npos) << r.daemon.log();
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0);
}

// Defect 11a: meminfo read errors must not starve the watchdog (systemd would
// kill a daemon that is alive and retrying), and last_error must be cleared
// once reading works again (STATUS stops saying "error").
TEST(TriggerPath, MeminfoErrorsKeepTheWatchdogFedAndClearOnRecovery) {
    Rig r;
    r.proc.set_available(2048 * MiB);
    write_file(r.dir.file("trigger"), "");
    r.start(config(r.dir.file("trigger")), {{"WATCHDOG_USEC", "400000"}});
    // Break meminfo in place (FakeProc rewrites the file the daemon keeps
    // open): lines of 'x', no MemAvailable line.
    std::string bad(512, 'x');
    for (size_t i = 63; i < bad.size(); i += 64) bad[i] = '\n';
    r.proc.write_text(bad);
    ASSERT_TRUE(r.daemon.wait_log("cannot read MemAvailable", 2s)) << r.daemon.log();
    r.notify.pump(10ms);
    const size_t before = r.notify.count("WATCHDOG=1");
    std::this_thread::sleep_for(1000ms);
    r.notify.pump(10ms);
    const size_t pings = r.notify.count("WATCHDOG=1") - before;
    std::printf("[ info ] %zu watchdog pings in 1 s of meminfo errors (WATCHDOG_USEC 400 ms)\n",
                pings);
    EXPECT_GE(pings, 4u) << "the watchdog starved while meminfo failed";
    EXPECT_TRUE(r.notify.wait_for("error (see journal)", 2s)) << "STATUS does not show the error";
    // Recovery: the error goes away from STATUS.
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("reading MemAvailable works again", 2s)) << r.daemon.log();
    r.notify.pump(1500ms);  // past the once-a-second STATUS
    std::string last_status;
    for (const auto& m : r.notify.messages())
        if (m.find("STATUS=") != std::string::npos) last_status = m;
    ASSERT_FALSE(last_status.empty());
    EXPECT_EQ(last_status.find("error"), std::string::npos)
        << "last_error not cleared after the recovery: " << last_status;
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0);
}
