// Detection of the hierarchy that holds the memory controller.
#include "cgroup/hierarchy.hpp"

#include <gtest/gtest.h>

#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;

TEST(Hierarchy, V2Unified) {
    TempDir t;
    FakeCgroupFs fs(t.path(), CgroupVersion::V2);
    auto h = detect_cgroup_hierarchy(t.path());
    ASSERT_TRUE(h) << h.error().message;
    EXPECT_EQ(h->version, CgroupVersion::V2);
    EXPECT_EQ(h->memory_root, t.path());
    EXPECT_STREQ(h->usage_file(), "memory.current");
    EXPECT_STREQ(h->inactive_file_key(), "inactive_file");
    EXPECT_NE(h->layout.find("v2"), std::string::npos);
}

TEST(Hierarchy, V1AndHybrid) {
    TempDir t;
    FakeCgroupFs fs(t.path(), CgroupVersion::V1);
    auto h = detect_cgroup_hierarchy(t.path() + "/");
    ASSERT_TRUE(h) << h.error().message;
    EXPECT_EQ(h->version, CgroupVersion::V1);
    EXPECT_EQ(h->memory_root, t.path() + "/memory");
    EXPECT_STREQ(h->usage_file(), "memory.usage_in_bytes");
    EXPECT_STREQ(h->inactive_file_key(), "total_inactive_file");
    EXPECT_EQ(h->layout.find("hybrid"), std::string::npos);

    TempDir t2;
    FakeCgroupFs hy(t2.path(), CgroupVersion::V1, /*hybrid=*/true);
    auto h2 = detect_cgroup_hierarchy(t2.path());
    ASSERT_TRUE(h2);
    EXPECT_EQ(h2->version, CgroupVersion::V1);
    EXPECT_NE(h2->layout.find("hybrid"), std::string::npos) << h2->layout;
}

TEST(Hierarchy, RootIsTheV1MemoryDirectoryOrASubCgroup) {
    TempDir t;
    FakeCgroupFs fs(t.path(), CgroupVersion::V1);
    fs.cgroup("test-parent", 0);
    auto h = detect_cgroup_hierarchy(fs.memory_root() + "/test-parent");
    ASSERT_TRUE(h) << h.error().message;
    EXPECT_EQ(h->version, CgroupVersion::V1);
    EXPECT_EQ(h->memory_root, fs.memory_root() + "/test-parent");
}

TEST(Hierarchy, ErrorsNameWhatIsWrong) {
    auto none = detect_cgroup_hierarchy("/nonexistent/oomguard-cgroup-root");
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("/nonexistent/oomguard-cgroup-root"), std::string::npos);

    TempDir empty;
    auto e = detect_cgroup_hierarchy(empty.path());
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find("no memory controller"), std::string::npos)
        << e.error().message;

    TempDir v2nomem;
    makeFile(v2nomem / "cgroup.controllers", "cpu io pids\n");
    auto n = detect_cgroup_hierarchy(v2nomem.path());
    ASSERT_FALSE(n);
    EXPECT_NE(n.error().message.find("without the memory controller"), std::string::npos)
        << n.error().message;
}

TEST(Hierarchy, HybridWithMemoryOnV2) {
    TempDir t;
    makeFile(t / "unified/cgroup.controllers", "cpu memory pids\n");
    auto h = detect_cgroup_hierarchy(t.path());
    ASSERT_TRUE(h) << h.error().message;
    EXPECT_EQ(h->version, CgroupVersion::V2);
    EXPECT_EQ(h->memory_root, t.path() + "/unified");
}

TEST(Hierarchy, ThisMachine) {
    if (::access("/sys/fs/cgroup", F_OK) != 0) GTEST_SKIP() << "no /sys/fs/cgroup";
    auto h = detect_cgroup_hierarchy("/sys/fs/cgroup");
    if (!h) GTEST_SKIP() << "no memory controller here: " << h.error().message;
    // Whatever it is, the memory root has the version's usage file or is a v2 root.
    if (h->version == CgroupVersion::V1)
        EXPECT_EQ(::access((h->memory_root + "/memory.usage_in_bytes").c_str(), F_OK), 0);
    else
        EXPECT_EQ(::access((h->memory_root + "/cgroup.controllers").c_str(), F_OK), 0);
}
