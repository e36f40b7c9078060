// Fault injection with the real oomguard binary: in every case the daemon keeps
// monitoring and the next trigger still fires. Real mechanisms only: a missing
// path, an unprivileged daemon (EACCES), a read-only tmpfs (EROFS), /dev/full
// (ENOSPC), a stalled FIFO reader, a deleted or garbage config, a signal storm,
// no journald socket, no /proc/pressure, a broken meminfo.
// Never the real /proc/sysrq-trigger: every trigger is a file or FIFO of the test.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <functional>
#include <optional>
#include <random>
#include <thread>

#include "fault_rig.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

namespace {

bool is_root() { return ::geteuid() == 0; }

}  // namespace

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

// ---------------------------------------------------------------------------
// The config file at reload time

namespace {

// Starts with a 500MiB threshold, breaks the config with `breakit`, reloads, and
// checks the old threshold is still in force: 600MiB does not trigger, 450MiB does.
void expect_old_config_survives(FaultRig& r, const std::function<void(const std::string&)>& breakit,
                                const std::string& expected_error) {
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    c.action = "repeat_after = \"10s\"";
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    breakit(r.config_path);
    r.daemon.signal(SIGHUP);
    ASSERT_TRUE(r.daemon.wait_log("reload failed", 3s)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find(expected_error), std::string::npos) << r.daemon.log();
    EXPECT_TRUE(r.notify.wait_for("reload failed", 2s)) << "STATUS should show the error";
    EXPECT_TRUE(r.daemon.running());
    r.proc.set_available(600 * MiB);
    std::this_thread::sleep_for(250ms);
    EXPECT_EQ(f_count(c.trigger), 0u) << r.daemon.log();
    r.proc.set_available(450 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

}  // namespace

TEST(ConfigFault, DeletedBeforeReload) {
    FaultRig r;
    expect_old_config_survives(
        r, [](const std::string& p) { ::unlink(p.c_str()); }, "No such file or directory");
}

TEST(ConfigFault, ReplacedByGarbageBeforeReload) {
    FaultRig r;
    expect_old_config_survives(
        r,
        [](const std::string& p) {
            std::mt19937 rng(7);
            std::string junk(4096, '\0');
            for (auto& ch : junk) ch = static_cast<char>(rng());
            write_file(p, junk);
        },
        "TOML syntax error");
}

TEST(ConfigFault, ReplacedByAFifoDoesNotHang) {
    // Opening a FIFO with no writer blocks a plain open(2) forever.
    FaultRig r;
    expect_old_config_survives(
        r,
        [](const std::string& p) {
            ::unlink(p.c_str());
            ::mkfifo(p.c_str(), 0644);
        },
        "not a regular file");
}

TEST(ConfigFault, ReplacedByADirectory) {
    FaultRig r;
    expect_old_config_survives(
        r,
        [](const std::string& p) {
            ::unlink(p.c_str());
            ::mkdir(p.c_str(), 0755);
        },
        "not a regular file");
}

TEST(ConfigFault, ReplacedByAHugeFile) {
    FaultRig r;
    expect_old_config_survives(
        r,
        [](const std::string& p) {
            std::string big =
                "[memory]\nmin_available = \"1GiB\"\n" + std::string(2 << 20, '#') + "\n";
            write_file(p, big);
        },
        "larger than 1 MiB");
}

TEST(ConfigFault, StormOf1000Sighups) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(::kill(r.daemon.pid(), SIGHUP), 0) << "signal " << i;
    // Pending SIGHUPs coalesce, and one read of the signalfd takes all queued: the
    // daemon reloads far fewer than 1000 times, at least once, and stays up.
    ASSERT_TRUE(r.daemon.wait_log("reloaded", 3s)) << r.daemon.log();
    std::this_thread::sleep_for(300ms);
    size_t reloads = r.daemon.log_count("reloaded");
    std::printf("1000 SIGHUPs -> %zu reloads\n", reloads);
    RecordProperty("reloads_for_1000_sighups", static_cast<int>(reloads));
    EXPECT_GE(reloads, 1u);
    EXPECT_LE(reloads, 1000u);
    EXPECT_EQ(r.daemon.log_count("reload failed"), 0u);
    EXPECT_TRUE(r.daemon.running());
    r.notify.pump(50ms);
    // One RELOADING=1 per reload (fewer only if the notify queue was full).
    EXPECT_GE(r.notify.count("RELOADING=1"), 1u);
    EXPECT_LE(r.notify.count("RELOADING=1"), reloads);
    // Still monitoring: the next crossing triggers.
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0);
}

TEST(ConfigFault, SighupStormDuringAnEpisode) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    for (int i = 0; i < 1000; ++i) ::kill(r.daemon.pid(), SIGHUP);
    // Reloads keep the episode: repeats go on every 100ms, with no re-arm in between.
    size_t before = f_count(c.trigger);
    EXPECT_TRUE(wait_f_count(c.trigger, before + 3, 2s)) << r.daemon.log();
    EXPECT_EQ(r.daemon.log_count(kRecoveredEntry), 0u);
    EXPECT_TRUE(r.daemon.running());
}

// ---------------------------------------------------------------------------
// The environment: journald, /proc/pressure, /dev/kmsg

namespace {

// An empty tmpfs over /run in the test's private mount namespace: the daemon
// sees no journald socket, or the one the test binds there.
struct PrivateRun {
    std::optional<TmpfsMount> mnt;
    std::string skip;
    PrivateRun() {
        if (!is_root()) {
            skip = "needs root to mount a tmpfs over /run";
            return;
        }
        if (!private_mount_namespace(skip)) return;
        mnt.emplace("/run");
        if (!mnt->mounted()) {
            skip = "cannot mount a tmpfs over /run: " + mnt->error();
            return;
        }
        ::mkdir("/run/systemd", 0755);
        ::mkdir("/run/systemd/journal", 0755);
    }
};

// A datagram socket at journald's address; reads only when asked to.
class FakeJournald {
public:
    FakeJournald() {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, "/run/systemd/journal/socket");
        bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~FakeJournald() { ::close(fd_); }
    bool bound() const { return bound_; }
    std::vector<std::string> receive() {
        std::vector<std::string> out;
        char buf[65536];
        for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;)
            out.emplace_back(buf, static_cast<size_t>(n));
        return out;
    }

private:
    int fd_ = -1;
    bool bound_ = false;
};

}  // namespace

TEST(EnvironmentFault, NoJournaldFallsBackToStderr) {
    PrivateRun run;
    if (!run.skip.empty()) GTEST_SKIP() << run.skip;
    struct stat st;
    ASSERT_NE(::stat("/run/systemd/journal/socket", &st), 0);
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {"--log-target=journal"})) << r.daemon.log();
    // The stderr form: "<priority>event: message FIELD=value".
    EXPECT_TRUE(r.daemon.wait_log("<5>start: oomguard", 2s)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    EXPECT_TRUE(r.daemon.wait_log("<4>trigger: MemAvailable 400 MiB below 500 MiB: asked the kernel OOM killer to kill one task", 2s))
        << r.daemon.log();
    r.proc.set_available(2048 * MiB);
    EXPECT_TRUE(r.daemon.wait_log(kRecoveredEntry, 2s)) << r.daemon.log();
}

TEST(EnvironmentFault, JournaldGetsStructuredEntries) {
    PrivateRun run;
    if (!run.skip.empty()) GTEST_SKIP() << run.skip;
    FakeJournald journald;
    ASSERT_TRUE(journald.bound()) << std::strerror(errno);
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {"--log-target=journal"})) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    std::string trigger_entry;
    auto deadline = Clock::now() + 2s;
    while (trigger_entry.empty() && Clock::now() < deadline) {
        for (auto& e : journald.receive())
            if (e.find("MESSAGE_ID=70f9fe7ab100420db4a8c0f2db5f4ab2\n") != std::string::npos)
                trigger_entry = e;
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_FALSE(trigger_entry.empty()) << "no trigger entry reached the journald socket\n"
                                        << r.daemon.log();
    for (const char* field :
         {"MESSAGE=MemAvailable 400 MiB below 500 MiB: asked the kernel OOM killer", "PRIORITY=4\n",
          "SYSLOG_IDENTIFIER=oomguard\n", "OOMGUARD_EVENT=trigger\n",
          "OOMGUARD_THRESHOLD_BYTES=524288000\n", "OOMGUARD_MEM_AVAILABLE_BYTES=419430400\n"})
        EXPECT_NE(trigger_entry.find(field), std::string::npos) << field << " missing in\n"
                                                                << trigger_entry;
    EXPECT_EQ(r.daemon.log_count("trigger:"), 0u)
        << "entries journald took must not also go to stderr";
}

TEST(EnvironmentFault, StalledJournaldDoesNotHoldUpTheTrigger) {
    // journald that never reads: its queue fills after net.unix.max_dgram_qlen
    // entries (10 by default). A blocking send would stop the loop right there,
    // before the next trigger write.
    PrivateRun run;
    if (!run.skip.empty()) GTEST_SKIP() << run.skip;
    FakeJournald journald;
    ASSERT_TRUE(journald.bound()) << std::strerror(errno);
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {"--log-target=journal"})) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    // Every repeat (100ms) logs an entry: 30 triggers are far past any queue.
    EXPECT_TRUE(wait_f_count(c.trigger, 30, 6s))
        << "triggers stopped at " << f_count(c.trigger) << "\n"
        << r.daemon.log();
    // What journald had no room for went to stderr instead.
    EXPECT_GE(r.daemon.log_count("trigger: MemAvailable"), 1u) << r.daemon.log();
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0);
}

TEST(EnvironmentFault, NotifySocketNobodyReadsDoesNotBlock) {
    // PID 1 busy (or stuck) under memory pressure: its notify queue fills. The
    // test never reads the notify socket after READY; reloads send 2 messages each.
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {}, {})) << r.daemon.log();
    for (int i = 0; i < 30; ++i) {
        r.daemon.signal(SIGHUP);
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(r.daemon.wait_log("reloaded", 2s, 12)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 3, 2s)) << r.daemon.log();
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0) << "blocked in a notify send?\n" << r.daemon.log();
}

TEST(EnvironmentFault, NoProcPressurePollsOnly) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    c.poll = "psi = true";
    write_file(c.trigger, "");
    struct stat st;
    ASSERT_NE(::stat((r.proc.dir() + "/pressure").c_str(), &st), 0)
        << "the fake proc root has no pressure dir";
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    EXPECT_TRUE(r.daemon.wait_log("PSI trigger unavailable, polling only", 2s)) << r.daemon.log();
    EXPECT_TRUE(r.daemon.wait_log("polling only", 2s, 2)) << "the start message says so\n"
                                                          << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

// [paths] kmsg is read by the kernel-OOM reporter (src/cgroup/oom_reporter.cpp).
// When it cannot be read the daemon says so once, names the reason, and goes on
// monitoring: the trigger fires, and fires again after memory comes back and
// goes low once more.

namespace {

const char* kKmsgDown = "cannot read the kernel's OOM reports, victims will not be named: ";

// Starts the rig with [paths] kmsg = path, checks the warning (with `reason`),
// then two triggers: one episode, recovery, and the next episode.
void expect_monitoring_without_kmsg(FaultRig& r, const std::string& kmsg, const std::string& reason,
                                    const std::vector<std::string>& wrapper = {}) {
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    c.action = "repeat_after = \"1h\"";  // a second 'f' only from a second episode
    c.paths = "kmsg = \"" + kmsg + "\"";
    write_file(c.trigger, "");
    if (!wrapper.empty()) ::chmod(c.trigger.c_str(), 0666);
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {}, wrapper)) << r.daemon.log();
    ASSERT_TRUE(r.daemon.wait_log(kKmsgDown, 2s)) << r.daemon.log();
    const std::string log = r.daemon.log();
    const std::string line =
        log.substr(log.find(kKmsgDown), log.find('\n', log.find(kKmsgDown)) - log.find(kKmsgDown));
    EXPECT_NE(line.find(kmsg), std::string::npos) << line;
    EXPECT_NE(line.find(reason), std::string::npos) << line;
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    r.proc.set_available(2048 * MiB);
    EXPECT_TRUE(r.daemon.wait_log(kRecoveredEntry, 2s)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 2, 2s)) << r.daemon.log();
    EXPECT_TRUE(r.daemon.running()) << r.daemon.log();
    EXPECT_EQ(r.daemon.log_count(kKmsgDown), 1u) << r.daemon.log();
}

// A memcg OOM kill in kmsg format, as the kernel writes it.
std::string memcg_oom_report(int pid) {
    const std::string p = std::to_string(pid);
    return "6,100,2000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
           "mems_allowed=0,oom_memcg=/fault-test,task_memcg=/fault-test,task=hog,pid=" +
           p + ",uid=0\n3,101,2000100,-;Memory cgroup out of memory: Killed process " + p +
           " (hog) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 "
           "pgtables:10kB oom_score_adj:0\n";
}

}  // namespace

TEST(EnvironmentFault, KmsgMissingStillMonitorsThenReadsItAfterAReload) {
    FaultRig r;
    const std::string kmsg = r.dir.file("no-such-kmsg");
    expect_monitoring_without_kmsg(r, kmsg, "No such file or directory");
    if (HasFatalFailure()) return;
    // The file appears; a reload opens it, and the reader reports what it gets.
    write_file(kmsg, "");
    r.daemon.signal(SIGHUP);
    bool reported = false;
    for (int i = 0; i < 20 && !reported; ++i) {
        int fd = ::open(kmsg.c_str(), O_WRONLY | O_APPEND);
        ASSERT_GE(fd, 0);
        const std::string rep = memcg_oom_report(4000 + i);
        ASSERT_EQ(::write(fd, rep.data(), rep.size()), static_cast<ssize_t>(rep.size()));
        ::close(fd);
        reported = r.daemon.wait_log("the kernel OOM-killed pid ", 250ms);
    }
    EXPECT_TRUE(reported) << r.daemon.log();
    EXPECT_TRUE(r.daemon.running());
}

TEST(EnvironmentFault, KmsgIsADirectoryStillMonitors) {
    FaultRig r;
    ::mkdir(r.dir.file("kmsg-dir").c_str(), 0755);
    expect_monitoring_without_kmsg(r, r.dir.file("kmsg-dir"),
                                   "not a character device, FIFO or file");
}

TEST(EnvironmentFault, KmsgUnreadableByAnUnprivilegedDaemon) {
    if (!is_root()) GTEST_SKIP() << "needs root to run the daemon as nobody";
    if (::access("/usr/bin/setpriv", X_OK) != 0)
        GTEST_SKIP() << "setpriv (util-linux) is not installed";
    // The premise: nobody cannot open /dev/kmsg here (mode 0600, or dmesg_restrict).
    pid_t child = ::fork();
    if (child == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(2);
        _exit(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK) < 0 ? 0 : 1);
    }
    int st = 0;
    ::waitpid(child, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 2) GTEST_SKIP() << "cannot become nobody";
    if (WEXITSTATUS(st) == 1) GTEST_SKIP() << "nobody can read /dev/kmsg on this machine";
    FaultRig r;
    r.open_to_others();
    expect_monitoring_without_kmsg(r, "/dev/kmsg", "cannot open kmsg /dev/kmsg", kAsNobody);
}

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

// Hermetic rig (issue 11): the fault rig's daemon sees the rig's cgroup root,
// kmsg file, lock and (absent) system bus, never the host's.
TEST(HermeticFaultRig, DaemonNamesTheRigsCgroupRootAndReadsTheRigsKmsg) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    EXPECT_TRUE(r.daemon.wait_log("no kubepods cgroup under " + r.paths.cgroup_root, 2s))
        << r.daemon.log();
    for (const char* host : {"/sys/fs/cgroup", "/dev/kmsg", "/run/"})
        EXPECT_EQ(r.daemon.log().find(host), std::string::npos) << host << "\n" << r.daemon.log();
    int fd = ::open(r.paths.kmsg.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    const std::string rep = memcg_oom_report(4321);
    ASSERT_EQ(::write(fd, rep.data(), rep.size()), static_cast<ssize_t>(rep.size()));
    ::close(fd);
    EXPECT_TRUE(r.daemon.wait_log("the kernel OOM-killed pid 4321", 2s)) << r.daemon.log();
}
