// [paths] kmsg pointed at something that is not the kernel log must not hold
// the loop: /dev/zero never runs dry, /dev/null is readable forever.
#include <gtest/gtest.h>
#include <signal.h>

#include "fault_rig.hpp"

using namespace oomguard::test;

TEST(KmsgSourceFault, EndlessOrEmptyDevicesDoNotStopTheTrigger) {
    for (const char* dev : {"/dev/zero", "/dev/null"}) {
        SCOPED_TRACE(dev);
        FaultRig r;
        ConfigText c;
        c.trigger = r.dir.file("trigger");
        c.paths = std::string("kmsg = \"") + dev + "\"";
        write_file(c.trigger, "");
        r.proc.set_available(2048 * MiB);
        ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
        r.proc.set_available(400 * MiB);
        EXPECT_TRUE(wait_f_count(c.trigger, 2, 2s)) << "'f' written: " << f_count(c.trigger);
        EXPECT_TRUE(r.daemon.wait_log("stopped reading the kernel's OOM reports", 2s))
            << r.daemon.log();
        r.daemon.signal(SIGTERM);
        EXPECT_EQ(r.daemon.wait_exit(1500ms), 0) << r.daemon.log();
    }
}
