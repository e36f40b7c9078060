#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sensors/meminfo.hpp"

using namespace oomguard;

namespace {
std::string fixture(const std::string& name) {
    std::ifstream in(std::string(OOMGUARD_FIXTURES) + "/meminfo/" + name);
    std::ostringstream ss;
    ss << in.rdbuf();
    EXPECT_FALSE(ss.str().empty()) << name;
    return ss.str();
}
}  // namespace

TEST(Meminfo, Kernel419) {
    MemSample s;
    ASSERT_EQ(parse_meminfo(fixture("linux-4.19-debian10.txt"), s), MeminfoParse::Ok);
    EXPECT_EQ(s.mem_total, 8167848ull * 1024);
    EXPECT_EQ(s.mem_available, 5122068ull * 1024);
    EXPECT_EQ(s.swap_free, 2081788ull * 1024);
}

TEST(Meminfo, Kernel515Arm64) {
    MemSample s;
    ASSERT_EQ(parse_meminfo(fixture("linux-5.15-ubuntu-arm64.txt"), s), MeminfoParse::Ok);
    EXPECT_EQ(s.mem_total, 65845196ull * 1024);
    EXPECT_EQ(s.mem_available, 41250212ull * 1024);
    EXPECT_EQ(s.swap_free, 0u);
}

TEST(Meminfo, Kernel618) {
    MemSample s;
    std::string text = fixture("linux-6.18-x86_64.txt");
    ASSERT_EQ(parse_meminfo(text, s), MeminfoParse::Ok);
    EXPECT_EQ(s.mem_total, 24684084ull * 1024);
    EXPECT_EQ(s.mem_available, 24282940ull * 1024);
}

TEST(Meminfo, KernelWithoutMemAvailable) {
    MemSample s;
    EXPECT_EQ(parse_meminfo(fixture("linux-3.10-rhel7-no-memavailable.txt"), s), MeminfoParse::NoMemAvailable);
    EXPECT_NE(std::string(describe(MeminfoParse::NoMemAvailable)).find("MemAvailable"), std::string::npos);
}

TEST(Meminfo, ReorderedAndMissing) {
    MemSample s;
    EXPECT_EQ(parse_meminfo("MemAvailable: 100 kB\nFoo: 1 kB\nMemTotal: 200 kB\n", s), MeminfoParse::Ok);
    EXPECT_EQ(s.mem_available, 100u * 1024);
    EXPECT_EQ(s.mem_total, 200u * 1024);
    EXPECT_EQ(parse_meminfo("MemAvailable: 100 kB\n", s), MeminfoParse::NoMemTotal);
    EXPECT_EQ(parse_meminfo("", s), MeminfoParse::NoMemTotal);
    EXPECT_EQ(parse_meminfo("MemTotal: x kB\nMemAvailable: 1 kB\n", s), MeminfoParse::Malformed);
    // No trailing newline, truncated read.
    EXPECT_EQ(parse_meminfo("MemTotal: 200 kB\nMemAvailable: 100 kB", s), MeminfoParse::Ok);
    EXPECT_EQ(s.mem_available, 100u * 1024);
    // A key that merely starts like ours is not ours.
    EXPECT_EQ(parse_meminfo("MemTotal: 200 kB\nMemAvailableX: 5 kB\n", s), MeminfoParse::NoMemAvailable);
}

TEST(MeminfoReader, MissingFileIsAClearError) {
    MeminfoReader r;
    Status st = r.open("/nonexistent-proc-root");
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("/nonexistent-proc-root/meminfo"), std::string::npos);
    EXPECT_EQ(st.error().code, ENOENT);
}

TEST(MeminfoReader, RealProcMeminfo) {
    MeminfoReader r;
    ASSERT_TRUE(r.open("/proc")) << "this machine's /proc/meminfo";
    MemSample s;
    ASSERT_TRUE(r.sample(s));
    EXPECT_GT(s.mem_total, 0u);
    EXPECT_LE(s.mem_available, s.mem_total);
}
