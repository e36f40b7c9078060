// The metrics textfile's temp path with something planted on it (issue 10,
// 11c): a FIFO must not hang the loop (the old open blocked for a reader), a
// symlink must not redirect the write. The real binary, as in the other faults.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "fault_rig.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

namespace {

std::string with_metrics(FaultRig& r, const std::string& trigger) {
    ConfigText c;
    c.trigger = trigger;
    c.paths = "\n[metrics]\ntextfile = \"" + r.dir.file("oomguard.prom") + "\"\ninterval = \"1s\"";
    return c.render();
}

bool wait_metrics(const std::string& path, std::chrono::milliseconds timeout) {
    auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
        struct stat st;
        if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
            read_file(path).find("oomguard_mem_available_bytes") != std::string::npos)
            return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

}  // namespace

TEST(MetricsFile, FifoAtTheTempPathDoesNotHangTheLoop) {
    FaultRig r;
    const std::string trigger = r.dir.file("trigger");
    write_file(trigger, "");
    // No reader: an open(O_WRONLY) without O_NONBLOCK waits for one forever.
    ASSERT_EQ(::mkfifo(r.dir.file(".oomguard.prom.tmp").c_str(), 0644), 0);
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(with_metrics(r, trigger))) << "no READY: the loop hung\n" << r.daemon.log();
    EXPECT_TRUE(wait_metrics(r.dir.file("oomguard.prom"), 3s)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(trigger, 1, 2s)) << r.daemon.log();
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0);
}

TEST(MetricsFile, SymlinkAtTheTempPathDoesNotRedirectTheWrite) {
    FaultRig r;
    const std::string trigger = r.dir.file("trigger");
    write_file(trigger, "");
    const std::string victim = r.dir.file("victim");
    write_file(victim, "precious\n");
    ASSERT_EQ(::symlink(victim.c_str(), r.dir.file(".oomguard.prom.tmp").c_str()), 0);
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(with_metrics(r, trigger))) << r.daemon.log();
    EXPECT_TRUE(wait_metrics(r.dir.file("oomguard.prom"), 3s))
        << "metrics never written past the planted link\n"
        << r.daemon.log();
    EXPECT_EQ(read_file(victim), "precious\n") << "the write followed the link";
    struct stat st;
    ASSERT_EQ(::lstat(r.dir.file("oomguard.prom").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(trigger, 1, 2s)) << r.daemon.log();
}
