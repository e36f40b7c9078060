// Fault injection with the real binary, the trigger path: missing, EACCES for an
// unprivileged daemon, EROFS, ENOSPC (/dev/full), a directory, a stalled FIFO
// reader. The daemon keeps monitoring and the next trigger fires. ~3 s, some root.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <thread>

#include "fault_rig.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// The trigger path

TEST(TriggerFault, MissingThenCreatedFiresWithoutReload) {
    FaultRig r;
    ConfigText c;
    std::string trigger = r.dir.file("later/trigger");
    c.trigger = trigger;
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("trigger failed", 2s)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("No such file or directory"), std::string::npos)
        << r.daemon.log();
    // The repeats keep failing and keep being logged: the loop goes on.
    EXPECT_TRUE(r.daemon.wait_log("trigger failed", 2s, 3)) << r.daemon.log();
    ::mkdir(r.dir.file("later").c_str(), 0755);
    write_file(trigger, "");
    EXPECT_TRUE(wait_f_count(trigger, 1, 2s)) << r.daemon.log();
    EXPECT_TRUE(r.daemon.running());
}

TEST(TriggerFault, NotWritableByAnUnprivilegedDaemon) {
    if (!is_root()) GTEST_SKIP() << "needs root to run the daemon as nobody";
    if (::access("/usr/bin/setpriv", X_OK) != 0)
        GTEST_SKIP() << "setpriv (util-linux) is not installed";
    FaultRig r;
    r.open_to_others();
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    ::chmod(c.trigger.c_str(), 0644);  // root's file: nobody gets EACCES
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {}, kAsNobody)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("trigger failed", 2s)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("Permission denied"), std::string::npos) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("ERRNO=13"), std::string::npos) << r.daemon.log();
    EXPECT_EQ(f_count(c.trigger), 0u);
    ::chmod(c.trigger.c_str(), 0666);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

TEST(TriggerFault, OnAReadOnlyMount) {
    if (!is_root()) GTEST_SKIP() << "needs root to mount a tmpfs";
    std::string why;
    if (!private_mount_namespace(why)) GTEST_SKIP() << "no private mount namespace: " << why;
    FaultRig r;
    TmpfsMount mnt(r.dir.file("ro"));
    ASSERT_TRUE(mnt.mounted()) << mnt.error();
    ConfigText c;
    c.trigger = r.dir.file("ro/trigger");
    write_file(c.trigger, "");
    ASSERT_TRUE(mnt.set_read_only(true)) << std::strerror(errno);
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("trigger failed", 2s, 2)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("Read-only file system"), std::string::npos) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("ERRNO=30"), std::string::npos) << r.daemon.log();
    ASSERT_TRUE(mnt.set_read_only(false)) << std::strerror(errno);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0);
}

TEST(TriggerFault, WriteFailsWithNoSpace) {
    // /dev/full: open succeeds, write(2) fails with ENOSPC.
    FaultRig r;
    ConfigText c;
    c.trigger = "/dev/full";
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("trigger failed", 2s, 2)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("No space left on device"), std::string::npos) << r.daemon.log();
    // A reload pointing at a working trigger: the next repeat lands there.
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.write_config(c.render());
    r.daemon.signal(SIGHUP);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

TEST(TriggerFault, IsADirectory) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    ::mkdir(c.trigger.c_str(), 0755);
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("trigger failed", 2s)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("Is a directory"), std::string::npos) << r.daemon.log();
    ::rmdir(c.trigger.c_str());
    write_file(c.trigger, "");
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

TEST(TriggerFault, FifoWhoseReaderNeverReadsIsBoundedNotAHang) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger.fifo");
    ASSERT_EQ(::mkfifo(c.trigger.c_str(), 0600), 0);
    // The reader: opened, never reads until the pipe is full.
    int reader = ::open(c.trigger.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    int filler = ::open(c.trigger.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(filler, 0);
    ::fcntl(filler, F_SETPIPE_SZ, 4096);  // one page: quick to fill
    char junk[512];
    std::memset(junk, 'x', sizeof junk);
    size_t filled = 0;
    for (;;) {
        ssize_t n = ::write(filler, junk, sizeof junk);
        if (n <= 0) break;
        filled += static_cast<size_t>(n);
    }
    ASSERT_EQ(errno, EAGAIN);
    ::close(filler);

    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    auto t0 = Clock::now();
    ASSERT_TRUE(r.daemon.wait_log("FIFO is full (reader stalled)", 2s)) << r.daemon.log();
    // Repeats every 100ms, each failing at once: 4 of them within ~1s.
    ASSERT_TRUE(r.daemon.wait_log("FIFO is full (reader stalled)", 3s, 4)) << r.daemon.log();
    EXPECT_LT(Clock::now() - t0, 2s) << "the loop slowed down on a stalled reader";
    EXPECT_NE(r.daemon.log().find("ERRNO=11"), std::string::npos) << r.daemon.log();
    // Still responsive: a reload is handled while the reader stalls.
    r.daemon.signal(SIGHUP);
    EXPECT_TRUE(r.daemon.wait_log("reloaded", 2s)) << r.daemon.log();

    // The reader catches up: the next repeat's 'f' arrives after the filler.
    size_t drained = 0, fs = 0;
    auto deadline = Clock::now() + 3s;
    while (fs == 0 && Clock::now() < deadline) {
        char buf[4096];
        ssize_t n = ::read(reader, buf, sizeof buf);
        if (n > 0) {
            for (ssize_t i = 0; i < n; ++i) (buf[i] == 'f' ? fs : drained)++;
        } else {
            std::this_thread::sleep_for(5ms);
        }
    }
    ::close(reader);
    EXPECT_EQ(drained, filled);
    EXPECT_GE(fs, 1u) << r.daemon.log();
}

TEST(TriggerFault, FifoReaderAppearsLater) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger.fifo");
    ASSERT_EQ(::mkfifo(c.trigger.c_str(), 0600), 0);
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("FIFO has no reader", 2s, 2)) << r.daemon.log();
    int reader = ::open(c.trigger.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    bool got = false;
    auto deadline = Clock::now() + 2s;
    while (!got && Clock::now() < deadline) {
        char ch;
        got = ::read(reader, &ch, 1) == 1 && ch == 'f';
        if (!got) std::this_thread::sleep_for(5ms);
    }
    ::close(reader);
    EXPECT_TRUE(got) << r.daemon.log();
}
