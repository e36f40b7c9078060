// The daemon's own log output must never stop it: stderr is a pipe or FIFO in
// a container (to the runtime's shim), and a terminal in the demo. A reader
// that stalls, or goes away, must cost log lines, not the trigger.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "fault_rig.hpp"

using namespace oomguard::test;

namespace {

struct FifoLogRig {
    FaultRig r;
    std::string log_fifo = r.dir.file("stderr.fifo");
    std::string trigger = r.dir.file("trigger");
    int reader = -1;

    FifoLogRig() {
        if (::mkfifo(log_fifo.c_str(), 0600) != 0) throw std::runtime_error("mkfifo");
        // Held open so the daemon's open() of its stderr does not block.
        reader = ::open(log_fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        write_file(trigger, "");
    }
    ~FifoLogRig() {
        if (reader >= 0) ::close(reader);
    }
    bool start() {
        ConfigText c;
        c.trigger = trigger;
        r.write_config(c.render());
        r.daemon.start(r.base_args(), r.env(), log_fifo);
        return r.notify.wait_for("READY=1", 5s);
    }
    // Fills the FIFO to the brim from a writer of our own: the daemon's next
    // write finds no room, as when the runtime's shim stops reading.
    size_t fill() const {
        int w = ::open(log_fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (w < 0) return 0;
        std::string chunk(4096, 'x');
        chunk.back() = '\n';
        size_t n = 0;
        for (;;) {
            ssize_t k = ::write(w, chunk.data(), chunk.size());
            if (k <= 0) break;
            n += static_cast<size_t>(k);
        }
        for (ssize_t k; (k = ::write(w, "y", 1)) == 1;) ++n;  // the last partial page
        ::close(w);
        return n;
    }
};

}  // namespace

TEST(LogSinkFault, StderrFifoNobodyReadsDoesNotHoldTheTrigger) {
    FifoLogRig rig;
    ASSERT_TRUE(rig.start());
    rig.r.proc.set_available(2048 * MiB);
    std::this_thread::sleep_for(100ms);
    ASSERT_GT(rig.fill(), 0u);
    // A reload logs at once: with a blocking write the loop would stop here.
    rig.r.daemon.signal(SIGHUP);
    std::this_thread::sleep_for(100ms);
    rig.r.proc.set_available(400 * MiB);
    // repeat_after is 100ms: several writes within a second mean the loop runs.
    EXPECT_TRUE(wait_f_count(rig.trigger, 3, 2s)) << "'f' written: " << f_count(rig.trigger);
    rig.r.daemon.signal(SIGTERM);
    EXPECT_EQ(rig.r.daemon.wait_exit(1500ms), 0) << "SIGTERM not handled with a full stderr FIFO";
}

TEST(LogSinkFault, StderrReaderGoneDoesNotKillTheDaemon) {
    FifoLogRig rig;
    ASSERT_TRUE(rig.start());
    rig.r.proc.set_available(2048 * MiB);
    std::this_thread::sleep_for(100ms);
    ::close(rig.reader);  // the shim died: every write now fails with EPIPE
    rig.reader = -1;
    rig.r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(rig.trigger, 2, 2s)) << "'f' written: " << f_count(rig.trigger);
    EXPECT_TRUE(rig.r.daemon.running()) << "the daemon died writing its log (SIGPIPE?)";
    rig.r.daemon.signal(SIGTERM);
    EXPECT_EQ(rig.r.daemon.wait_exit(1500ms), 0);
}
