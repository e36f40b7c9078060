// SysrqTrigger::probe(), the start/reload check of the trigger path: it must
// write nothing, and must not even open anything but a FIFO, so the real
// /proc/sysrq-trigger is never opened by a check (only a write triggers, but
// a check has no business holding it open).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "actions/trigger.hpp"
#include "support/files.hpp"

using oomguard::SysrqTrigger;

namespace {

using oomguard::test::TempDir;

}  // namespace

TEST(TriggerProbe, RegularFileIsCheckedWithoutOpeningIt) {
    TempDir d;
    const std::string f = d.path() + "/trigger";
    int fd = ::open(f.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
    int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    ASSERT_GE(in, 0);
    ASSERT_GE(::inotify_add_watch(in, f.c_str(), IN_OPEN | IN_MODIFY), 0);
    EXPECT_TRUE(SysrqTrigger(f).probe());
    char buf[4096];
    EXPECT_LT(::read(in, buf, sizeof buf), 0) << "probe() opened or wrote the trigger file";
    ::close(in);
    struct stat st;
    ASSERT_EQ(::stat(f.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 0);
}

TEST(TriggerProbe, NamesWhatIsWrong) {
    TempDir d;
    auto st = SysrqTrigger(d.path() + "/missing").probe();
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find(d.path() + "/missing"), std::string::npos)
        << st.error().message;
    EXPECT_EQ(st.error().code, ENOENT);
    st = SysrqTrigger(d.path()).probe();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, EISDIR);
    const std::string ro = d.path() + "/ro";
    ::close(::open(ro.c_str(), O_CREAT | O_WRONLY, 0400));
    if (::geteuid() != 0) {  // root may write a 0400 file (CAP_DAC_OVERRIDE)
        st = SysrqTrigger(ro).probe();
        EXPECT_FALSE(st);
    }
}

TEST(TriggerProbe, FifoWithoutReaderSaysSo) {
    TempDir d;
    const std::string p = d.path() + "/fifo";
    ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
    auto st = SysrqTrigger(p).probe();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ENXIO);
    int r = ::open(p.c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(r, 0);
    EXPECT_TRUE(SysrqTrigger(p).probe());
    char c;
    EXPECT_LE(::read(r, &c, 1), 0) << "probe() wrote to the FIFO";
    ::close(r);
}
