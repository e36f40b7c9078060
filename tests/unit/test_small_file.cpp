// util/small_file.hpp: the one reader of small whole files (proc, cgroupfs,
// runtime state). It names the path in every error, refuses what is not a
// regular file without blocking on it, and stops at its bound.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "support/files.hpp"
#include "util/small_file.hpp"

using namespace oomguard;
using oomguard::test::TempDir;

TEST(SmallFile, ReadsAWholeFileLargerThanOneRead) {
    TempDir d;
    const std::string text(10000, 'x');
    d.write("f", text + "\n");
    auto r = read_small_file(d.file("f"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, text + "\n");
}

TEST(SmallFile, AMissingFileIsAnErrorNamingThePathAndErrno) {
    TempDir d;
    auto r = read_small_file(d.file("gone"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ENOENT);
    EXPECT_NE(r.error().message.find(d.file("gone")), std::string::npos) << r.error().message;
}

TEST(SmallFile, AFifoIsRefusedWithoutBlocking) {
    TempDir d;
    ASSERT_EQ(::mkfifo(d.file("fifo").c_str(), 0600), 0);
    auto r = read_small_file(d.file("fifo"));  // O_NONBLOCK: no writer, no wait
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find(d.file("fifo") + ": not a regular file"), std::string::npos)
        << r.error().message;
}

TEST(SmallFile, AFileOverTheBoundIsRefused) {
    TempDir d;
    d.write("big", std::string(101, 'x'));
    auto r = read_small_file(d.file("big"), 100);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("101 bytes, more than the 100 read"), std::string::npos)
        << r.error().message;
    d.write("fits", std::string(100, 'x'));
    EXPECT_TRUE(read_small_file(d.file("fits"), 100));
}

// proc files say st_size 0: the bound holds while reading, too.
TEST(SmallFile, AProcFileOverTheBoundIsRefusedWhileReading) {
    auto r = read_small_file("/proc/self/status", 16);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("/proc/self/status: more than the 16 bytes read"),
              std::string::npos)
        << r.error().message;
    EXPECT_TRUE(read_small_file("/proc/self/status"));
}
