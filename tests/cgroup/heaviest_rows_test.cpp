// The rows D-Bus (GetHeaviest, Dump, oomguardctl top) and the metrics get from
// a report: pods, then the heaviest pod's containers, never its sandbox.
#include "cgroup/heaviest_rows.hpp"

#include <gtest/gtest.h>

using namespace oomguard;

namespace {

CgroupInfo info(const std::string& path, CgroupKind kind, const std::string& name, uint64_t ws) {
    CgroupInfo c;
    c.path = path;
    c.kind = kind;
    c.pod_namespace = "shop";
    c.pod_name = "web-1";
    c.container_name = name;
    c.container_id = "id-" + path.substr(path.rfind('/') + 1);
    c.working_set = ws;
    return c;
}

}  // namespace

TEST(HeaviestRows, PodsThenContainersWithoutSandboxOrConmon) {
    HeaviestReport r;
    r.valid = r.kubernetes = true;
    r.top = {info("/kubepods/pod1", CgroupKind::Pod, "", 900),
             info("/kubepods/pod2", CgroupKind::Pod, "", 100)};
    r.containers = {info("/kubepods/pod1/a", CgroupKind::Container, "app", 800),
                    info("/kubepods/pod1/s", CgroupKind::Sandbox, "", 1),
                    info("/kubepods/pod1/m", CgroupKind::Conmon, "", 1),
                    info("/kubepods/pod1/b", CgroupKind::Container, "", 50)};
    auto rows = heaviest_rows(r, 10);
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0].cgroup, "/kubepods/pod1");
    EXPECT_EQ(rows[0].container, "");
    EXPECT_EQ(rows[1].container, "app");
    EXPECT_EQ(rows[2].container, "id-b");  // unnamed: its id
    EXPECT_EQ(rows[3].cgroup, "/kubepods/pod2");
    // The cut counts only what is listed.
    EXPECT_EQ(heaviest_rows(r, 2).size(), 2u);
}
