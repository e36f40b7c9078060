// Parsing of memory cgroup files: usage, limits ("max", the v1 huge value) and
// memory.stat fields; working set never underflows.
#include "cgroup/memcg_stats.hpp"

#include <gtest/gtest.h>

#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;

TEST(MemcgParse, U64) {
    uint64_t v = 0;
    EXPECT_TRUE(parse_u64_text("123\n", v));
    EXPECT_EQ(v, 123u);
    EXPECT_TRUE(parse_u64_text("0", v));
    EXPECT_EQ(v, 0u);
    EXPECT_FALSE(parse_u64_text("", v));
    EXPECT_FALSE(parse_u64_text("max\n", v));
    EXPECT_FALSE(parse_u64_text("12a\n", v));
    EXPECT_FALSE(parse_u64_text("-1\n", v));
    EXPECT_FALSE(parse_u64_text("99999999999999999999999\n", v));  // overflow
}

TEST(MemcgParse, LimitMaxAndV1HugeValueAreUnlimited) {
    std::optional<uint64_t> l = 1;
    EXPECT_TRUE(parse_limit_text("max\n", l));
    EXPECT_FALSE(l.has_value());
    l = 1;
    EXPECT_TRUE(parse_limit_text("9223372036854771712\n", l));  // v1 PAGE_COUNTER_MAX, 4 KiB pages
    EXPECT_FALSE(l.has_value());
    l = 1;
    EXPECT_TRUE(parse_limit_text("9223372036854710272\n", l));  // 64 KiB pages (arm64)
    EXPECT_FALSE(l.has_value());
    EXPECT_TRUE(parse_limit_text("536870912\n", l));
    ASSERT_TRUE(l.has_value());
    EXPECT_EQ(*l, 512 * MiB);
    EXPECT_FALSE(parse_limit_text("lots\n", l));
    EXPECT_FALSE(parse_limit_text("", l));
}

TEST(MemcgParse, StatFieldIsAnExactKey) {
    const std::string v1 =
        "cache 10\ninactive_file 4096\ntotal_inactive_file 777\ntotal_inactive_file_x 1\n";
    uint64_t v = 0;
    EXPECT_TRUE(parse_stat_field(v1, "total_inactive_file", v));
    EXPECT_EQ(v, 777u);
    EXPECT_TRUE(parse_stat_field(v1, "inactive_file", v));
    EXPECT_EQ(v, 4096u);
    EXPECT_FALSE(parse_stat_field(v1, "active_file", v));
    EXPECT_FALSE(parse_stat_field("inactive_file\n", "inactive_file", v));
    EXPECT_FALSE(parse_stat_field("", "inactive_file", v));
    // Last line without newline.
    EXPECT_TRUE(parse_stat_field("anon 1\ninactive_file 5", "inactive_file", v));
    EXPECT_EQ(v, 5u);
}

TEST(MemcgParse, WorkingSet) {
    EXPECT_EQ(working_set(100, 30), 70u);
    EXPECT_EQ(working_set(30, 100), 0u);  // usage is approximate on v1: never underflow
}

TEST(MemcgRead, FixtureV1AndV2) {
    for (auto v : {CgroupVersion::V1, CgroupVersion::V2}) {
        TempDir t;
        FakeCgroupFs fs(t.path(), v);
        fs.cgroup("a", 300 * MiB, 200 * MiB, 512 * MiB, 1);
        auto h = detect_cgroup_hierarchy(t.path());
        ASSERT_TRUE(h) << h.error().message;
        int dir = ::open((fs.memory_root() + "/a").c_str(), O_RDONLY | O_DIRECTORY);
        ASSERT_GE(dir, 0);
        MemcgUsage u;
        ASSERT_EQ(read_usage_at(dir, *h, u), ReadStatus::Ok);
        EXPECT_EQ(u.usage, 300 * MiB);
        EXPECT_EQ(u.inactive_file, 200 * MiB);  // v1: total_inactive_file, not the local 4096
        EXPECT_EQ(u.working_set(), 100 * MiB);
        MemcgFiles f;
        ASSERT_EQ(f.open(dir, *h), ReadStatus::Ok);
        char buf[8192];
        fs.set_usage("a", 400 * MiB, 50 * MiB);  // rewritten: the kept fds must see it
        // set_usage recreates the files (O_TRUNC keeps the inode): same fd, new content.
        ASSERT_EQ(f.read(*h, buf, sizeof buf, u), ReadStatus::Ok);
        EXPECT_EQ(u.working_set(), 350 * MiB);
        std::optional<uint64_t> limit;
        ASSERT_EQ(read_limit_at(dir, *h, limit), ReadStatus::Ok);
        EXPECT_EQ(limit, std::optional<uint64_t>(512 * MiB));
        EXPECT_EQ(read_oom_group_at(dir, *h), v == CgroupVersion::V2 ? 1 : -1);
        size_t len = 0;
        EXPECT_EQ(read_at(dir, "no-such-file", buf, sizeof buf, len), ReadStatus::Gone);
        ::close(dir);
    }
}
