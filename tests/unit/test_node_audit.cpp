// The node audit: each finding from plain facts (on the stack), once-per-finding
// memory, and the facts gathered from fixture /proc and cgroup v2 trees.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "audit/node_audit.hpp"
#include "support/files.hpp"

namespace fs = std::filesystem;
using namespace oomguard;

namespace {

bool has(const std::vector<AuditFinding>& v, AuditKind k, const std::string& subject_part = "") {
    for (const auto& f : v)
        if (f.kind == k && f.subject.find(subject_part) != std::string::npos) return true;
    return false;
}

AuditFacts healthy() {
    AuditFacts f;
    f.mem_total = 16ull << 30;
    f.critical.push_back({412, "containerd", -999, 1, "/system.slice/containerd.service"});
    f.critical.push_back({300, "kubelet", -999, 1, "/system.slice/kubelet.service"});
    f.have_pod_tasks = true;
    f.max_pod_score = 900;
    f.kubepods_found = true;
    f.kubepods = "kubepods.slice";
    f.kubepods_limit_known = true;
    f.kubepods_limit = 14ull << 30;
    f.cgroup_v2 = true;
    f.containers = 4;
    return f;
}

struct Tree {
    oomguard::test::TempDir tmp;  // tests/support's
    fs::path root = tmp.path();
    void file(const std::string& rel, const std::string& text) {
        fs::create_directories((root / rel).parent_path());
        std::ofstream(root / rel) << text;
    }
    void task(int pid, const std::string& comm, int adj, int score, const std::string& cg) {
        std::string d = "proc/" + std::to_string(pid) + "/";
        file(d + "comm", comm + "\n");
        file(d + "oom_score_adj", std::to_string(adj) + "\n");
        file(d + "oom_score", std::to_string(score) + "\n");
        file(d + "cgroup", "0::" + cg + "\n");
    }
};

}  // namespace

TEST(NodeAudit, AHealthyNodeHasNoFindings) { EXPECT_TRUE(audit_node(healthy()).empty()); }

TEST(NodeAudit, CriticalServiceAboveMinus999) {
    AuditFacts f = healthy();
    f.critical[0].oom_score_adj = 0;
    auto v = audit_node(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].kind, AuditKind::CriticalAdj);
    EXPECT_NE(v[0].message.find("containerd (pid 412, containerd.service) has oom_score_adj 0"),
              std::string::npos)
        << v[0].message;
    EXPECT_NE(v[0].fix.find("OOMScoreAdjust=-999"), std::string::npos);
    EXPECT_NE(v[0].fix.find("systemctl edit containerd.service"), std::string::npos);
    f.critical[0].oom_score_adj = -999;  // the boundary is fine
    EXPECT_TRUE(audit_node(f).empty());
}

TEST(NodeAudit, CriticalServiceThatOutranksEveryPod) {
    AuditFacts f = healthy();
    f.critical[1].oom_score = 901;  // one above the highest pod task
    auto v = audit_node(f);
    EXPECT_TRUE(has(v, AuditKind::CriticalOutranksPods, "kubelet"));
    f.critical[1].oom_score = 900;  // a tie does not outrank
    EXPECT_FALSE(has(audit_node(f), AuditKind::CriticalOutranksPods));
    f.critical[1].oom_score = 5000;
    f.have_pod_tasks = false;  // no pods: nothing to outrank
    EXPECT_FALSE(has(audit_node(f), AuditKind::CriticalOutranksPods));
}

TEST(NodeAudit, AllocatableMissingOrAllOfMemTotal) {
    AuditFacts f = healthy();
    f.kubepods_limit.reset();
    EXPECT_TRUE(has(audit_node(f), AuditKind::NoAllocatable, "kubepods.slice"));
    f.kubepods_limit = f.mem_total;  // "enforced", but the whole node
    auto v = audit_node(f);
    ASSERT_TRUE(has(v, AuditKind::AllocatableIsAll));
    EXPECT_NE(v[0].message.find("100% of MemTotal"), std::string::npos) << v[0].message;
    f.kubepods_limit = f.mem_total / 100 * 97;
    EXPECT_TRUE(audit_node(f).empty());
    f.kubepods_limit_known = false;  // unreadable: no finding either way
    f.kubepods_limit.reset();
    EXPECT_TRUE(audit_node(f).empty());
}

TEST(NodeAudit, OomGroupOffOnlyOnV2) {
    AuditFacts f = healthy();
    f.containers_without_oom_group = 2;
    f.oom_group_examples = {"a.scope", "b.scope"};
    auto v = audit_node(f);
    ASSERT_TRUE(has(v, AuditKind::OomGroupOff));
    EXPECT_NE(v[0].message.find("2 of 4 container cgroups"), std::string::npos) << v[0].message;
    f.cgroup_v2 = false;
    EXPECT_TRUE(audit_node(f).empty());
}

TEST(NodeAudit, PanicOnOom) {
    AuditFacts f = healthy();
    f.panic_on_oom = 1;
    EXPECT_TRUE(has(audit_node(f), AuditKind::PanicOnOom));
    f.panic_on_oom = -1;  // unknown
    EXPECT_TRUE(audit_node(f).empty());
}

TEST(AuditMemory, EachFindingOnceUntilItGoesAway) {
    AuditFacts f = healthy();
    f.critical[0].oom_score_adj = 0;
    AuditMemory m;
    EXPECT_EQ(m.fresh(audit_node(f)).size(), 1u);
    f.critical[0].pid = 999;  // restarted: same unit, same finding
    EXPECT_TRUE(m.fresh(audit_node(f)).empty());
    f.panic_on_oom = 1;
    auto v = m.fresh(audit_node(f));
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].kind, AuditKind::PanicOnOom);
    EXPECT_EQ(m.active(), 2u);
    f.critical[0].oom_score_adj = -999;  // fixed ...
    EXPECT_TRUE(m.fresh(audit_node(f)).empty());
    f.critical[0].oom_score_adj = 0;  // ... and broken again: warned again
    EXPECT_EQ(m.fresh(audit_node(f)).size(), 1u);
}

TEST(NodeAudit, GathersFactsFromProcAndCgroupTrees) {
    Tree t;
    t.task(1, "systemd", 0, 0, "/init.scope");
    t.task(300, "kubelet", -999, 1, "/system.slice/kubelet.service");
    t.task(412, "containerd", 0, 700, "/system.slice/containerd.service");
    t.task(500, "sshd", -1000, 0, "/system.slice/ssh.service");
    t.task(600, "bash", 0, 650, "/user.slice/user-0.slice/session-1.scope");  // not critical
    t.task(900, "hog", 1000, 600,
           "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/"
           "cri-containerd-aa.scope");
    t.task(901, "kubelet", 1000, 900,  // named like kubelet, but in a pod
           "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/"
           "cri-containerd-bb.scope");
    t.file("proc/sys/vm/panic_on_oom", "0\n");
    const std::string kp = "cg/kubepods.slice";
    t.file(kp + "/memory.max", "max\n");
    t.file(kp + "/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-aa.scope/"
                "memory.oom.group",
           "1\n");
    t.file(kp + "/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-bb.scope/"
                "memory.oom.group",
           "0\n");
    t.file(kp + "/kubepods-pod2.slice/cri-containerd-cc.scope/memory.oom.group", "0\n");
    AuditFacts f =
        gather_audit_facts((t.root / "proc").string(), (t.root / kp).string(), true, 16ull << 30);
    EXPECT_TRUE(f.errors.empty());
    ASSERT_EQ(f.critical.size(), 3u);  // kubelet, containerd, sshd; not the pod's "kubelet"
    EXPECT_TRUE(f.have_pod_tasks);
    EXPECT_EQ(f.max_pod_score, 900);
    EXPECT_TRUE(f.kubepods_found);
    EXPECT_TRUE(f.kubepods_limit_known);
    EXPECT_FALSE(f.kubepods_limit.has_value());
    EXPECT_EQ(f.containers, 3u);
    EXPECT_EQ(f.containers_without_oom_group, 2u);
    EXPECT_EQ(f.panic_on_oom, 0);
    auto v = audit_node(f);
    EXPECT_TRUE(has(v, AuditKind::CriticalAdj, "containerd"));
    EXPECT_FALSE(has(v, AuditKind::CriticalAdj, "kubelet"));
    EXPECT_FALSE(has(v, AuditKind::CriticalAdj, "sshd"));
    EXPECT_FALSE(has(v, AuditKind::CriticalOutranksPods));  // 700 < 900
    EXPECT_TRUE(has(v, AuditKind::NoAllocatable));
    EXPECT_TRUE(has(v, AuditKind::OomGroupOff));
    EXPECT_EQ(v.size(), 3u);
}

TEST(NodeAudit, GathersV1LimitsAndSurvivesAMissingTree) {
    Tree t;
    t.file("cg/kubepods/memory.limit_in_bytes", "9223372036854771712\n");  // v1 "unlimited"
    AuditFacts f = gather_audit_facts((t.root / "none").string(), (t.root / "cg/kubepods").string(),
                                      false, 1ull << 34);
    // The missing proc root is named.
    ASSERT_EQ(f.errors.size(), 1u);
    EXPECT_EQ(f.errors[0].message, (t.root / "none").string() + ": No such file or directory");
    EXPECT_EQ(f.errors[0].code, ENOENT);
    EXPECT_EQ(f.panic_on_oom, -1);
    EXPECT_TRUE(f.kubepods_limit_known);
    EXPECT_FALSE(f.kubepods_limit.has_value());
    t.file("cg/kubepods/memory.limit_in_bytes", "8589934592\n");
    f = gather_audit_facts((t.root / "none").string(), (t.root / "cg/kubepods").string(), false,
                           1ull << 34);
    ASSERT_TRUE(f.kubepods_limit.has_value());
    EXPECT_EQ(*f.kubepods_limit, 8589934592u);
}

TEST(NodeAudit, AnUnreadableOomScoreAdjIsNamedAndTheTaskLeftOut) {
    Tree t;
    t.task(412, "containerd", 0, 700, "/system.slice/containerd.service");
    t.file("proc/412/oom_score_adj", "x\n");
    AuditFacts f = gather_audit_facts((t.root / "proc").string(), "", true, 1ull << 34);
    ASSERT_EQ(f.errors.size(), 1u);
    EXPECT_EQ(f.errors[0].message, (t.root / "proc/412").string() + "/oom_score_adj: not a number");
    EXPECT_TRUE(f.critical.empty());
}

// vm.panic_on_oom that is not a number: unknown (-1), and named (stoi took
// "1x" for 1 and threw on "x", which was swallowed).
TEST(NodeAudit, APanicOnOomThatIsNotANumberIsNamedAndUnknown) {
    Tree t;
    t.file("proc/sys/vm/panic_on_oom", "1x\n");
    AuditFacts f = gather_audit_facts((t.root / "proc").string(), "", true, 1ull << 34);
    ASSERT_EQ(f.errors.size(), 1u);
    EXPECT_EQ(f.errors[0].message,
              (t.root / "proc").string() + "/sys/vm/panic_on_oom: not a number");
    EXPECT_EQ(f.panic_on_oom, -1);
    t.file("proc/sys/vm/panic_on_oom", " 2 \n");
    f = gather_audit_facts((t.root / "proc").string(), "", true, 1ull << 34);
    EXPECT_TRUE(f.errors.empty());
    EXPECT_EQ(f.panic_on_oom, 2);
}
