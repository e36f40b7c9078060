// Names from the runtime's own state (issue #13): the config.json annotation
// parser, containerd's and CRI-O's bundle layouts, and the monitor naming
// containers (and pods) from them when kubelet's links are missing or stale,
// with the links taking precedence when they are good.
#include "cgroup/runtime_state.hpp"

#include <gtest/gtest.h>

#include <map>

#include "cgroup/cgroup_monitor.hpp"
#include "cgroup/container_namer.hpp"
#include "cgroup/kmsg.hpp"
#include "cgroup/oom_reporter.hpp"
#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {

std::string get(const Annotations& a, const std::string& k) {
    for (const auto& [key, v] : a)
        if (key == k) return v;
    return "<absent>";
}

// An OCI config.json as containerd's CRI plugin writes it (shortened).
std::string containerd_config(const std::string& ns, const std::string& pod, const std::string& uid,
                              const std::string& container, bool sandbox = false) {
    std::string a = "\"io.kubernetes.cri.sandbox-id\": \"" + container_id(999) +
                    "\",\n    \"io.kubernetes.cri.sandbox-namespace\": \"" + ns +
                    "\",\n    \"io.kubernetes.cri.sandbox-uid\": \"" + uid +
                    "\",\n    \"io.kubernetes.cri.sandbox-name\": \"" + pod + "\",\n";
    if (sandbox)
        a += "    \"io.kubernetes.cri.sandbox-log-directory\": \"/var/log/pods/x\",\n"
             "    \"io.kubernetes.cri.container-type\": \"sandbox\"";
    else
        a += "    \"io.kubernetes.cri.container-name\": \"" + container +
             "\",\n    \"io.kubernetes.cri.image-name\": \"busybox:latest\",\n"
             "    \"io.kubernetes.cri.container-type\": \"container\"";
    return "{\"ociVersion\": \"1.0.2-dev\", \"process\": {\"user\": {\"uid\": 0, \"gid\": 0},\n"
           "  \"args\": [\"sh\", \"-c\", \"echo \\\"hi\\\"\"], \"env\": [\"PATH=/bin\"],\n"
           "  \"terminal\": false, \"oomScoreAdj\": -997},\n"
           "  \"root\": {\"path\": \"rootfs\", \"readonly\": null},\n"
           "  \"annotations\": {\n    " +
           a + "\n  },\n  \"linux\": {\"resources\": {\"memory\": {\"limit\": 1.5e9}}}}\n";
}

std::string crio_config(const std::string& ns, const std::string& pod, const std::string& uid,
                        const std::string& container) {
    return "{\"ociVersion\":\"1.0.2\",\"annotations\":{\"io.container.manager\":\"cri-o\","
           "\"io.kubernetes.cri-o.ContainerType\":\"container\",\"io.kubernetes.container.name\":"
           "\"" +
           container + "\",\"io.kubernetes.pod.name\":\"" + pod +
           "\",\"io.kubernetes.pod.namespace\":\"" + ns + "\",\"io.kubernetes.pod.uid\":\"" + uid +
           "\",\"io.kubernetes.cri-o.Labels\":\"{\\\"io.kubernetes.container.name\\\":\\\"" +
           container + "\\\"}\"}}";
}

}  // namespace

TEST(OciAnnotations, ParsesStringsWithEscapesAndSkipsTheRest) {
    auto a = parse_oci_annotations(
        "{\"process\": {\"args\": [1, -2.5e3, true, false, null, {\"a\": [[]]}]},"
        " \"annotations\": {\"k\": \"v\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\", \"n\": 7,"
        " \"o\": {\"x\": \"y\"}, \"e\": \"\"}, \"z\": \"}\"}");
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(get(*a, "k"), "v\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
    EXPECT_EQ(get(*a, "e"), "");
    EXPECT_EQ(get(*a, "n"), "<absent>");  // not a string: skipped
    EXPECT_EQ(get(*a, "x"), "<absent>");  // nested objects are not annotations
    auto none = parse_oci_annotations(" {\"ociVersion\": \"1.0\"} \n");
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
    ASSERT_TRUE(parse_oci_annotations("{}"));
}

TEST(OciAnnotations, BadJsonIsAnErrorThatSaysWhere) {
    const char* bad[] = {
        "",
        "[]",
        "{",
        "{\"annotations\": {\"k\": \"v\"}",
        "{\"annotations\": {\"k\" \"v\"}}",
        "{\"annotations\": {\"k\": \"v\",}}",
        "{\"a\": tru}",
        "{\"a\": \"\\x\"}",
        "{\"a\": \"\\u12\"}",
        "{\"a\": \"\\ud800\"}",
        "{\"a\": \"line\nbreak\"}",
        "{\"a\": 1} trailing",
        "{\"a\": -}",
        "{\"a\": \"unterminated}",
    };
    for (const char* s : bad) {
        auto r = parse_oci_annotations(s);
        ASSERT_FALSE(r) << "accepted: " << s;
        EXPECT_NE(r.error().message.find("bad JSON at byte "), std::string::npos) << s;
    }
    auto r = parse_oci_annotations("{\"annotations\": {\"k\" \"v\"}}");
    EXPECT_EQ(r.error().message, "bad JSON at byte 21: expected ':'");
}

TEST(OciAnnotations, DeepNestingIsRefusedNotACrash) {
    std::string deep = "{\"a\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
    auto r = parse_oci_annotations(deep);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("nesting no deeper than 64"), std::string::npos)
        << r.error().message;
    std::string ok = "{\"a\": " + std::string(60, '[') + std::string(60, ']') + "}";
    EXPECT_TRUE(parse_oci_annotations(ok));
}

TEST(RuntimeState, ContainerdAndCrioBundles) {
    TempDir t;
    RuntimeStateReader rd({t / "containerd", t / "crio"});
    makeFile(rd.containerd_config(container_id(1)),
             containerd_config("prod", "db-0", pod_uid(1), "postgres"));
    makeFile(rd.containerd_config(container_id(2)),
             containerd_config("prod", "db-0", pod_uid(1), "", /*sandbox=*/true));
    makeFile(rd.crio_config(container_id(3)), crio_config("web", "front", pod_uid(3), "nginx"));
    EXPECT_EQ(rd.containerd_config(container_id(1)), t / "containerd" +
                                                         "/io.containerd.runtime.v2.task/k8s.io/" +
                                                         container_id(1) + "/config.json");
    EXPECT_EQ(rd.crio_config(container_id(3)),
              t / "crio" + "/overlay-containers/" + container_id(3) + "/userdata/config.json");

    auto c = rd.lookup(container_id(1));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->source, "containerd");
    EXPECT_EQ(c->container, "postgres");
    EXPECT_EQ(c->pod_name, "db-0");
    EXPECT_EQ(c->pod_namespace, "prod");
    EXPECT_EQ(c->pod_uid, pod_uid(1));
    EXPECT_FALSE(c->sandbox);
    auto s = rd.lookup(container_id(2));
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->sandbox);
    EXPECT_EQ(s->container, "");
    EXPECT_EQ(s->pod_name, "db-0");
    auto o = rd.lookup(container_id(3));
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->source, "cri-o");
    EXPECT_EQ(o->container, "nginx");
    EXPECT_EQ(o->pod_name, "front");
    EXPECT_EQ(o->pod_namespace, "web");
    EXPECT_EQ(o->pod_uid, pod_uid(3));

    // A CRI-O bundle that also carries io.kubernetes.cri.container-type (allowed
    // for crun): still CRI-O's keys.
    std::string both = crio_config("web", "front", pod_uid(3), "php");
    both.insert(both.find("\"io.container.manager\""),
                "\"io.kubernetes.cri.container-type\":\"container\",");
    makeFile(rd.crio_config(container_id(7)), both);
    auto b = rd.lookup(container_id(7));
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(b->container, "php");
    EXPECT_EQ(b->pod_name, "front");
    EXPECT_FALSE(b->sandbox);

    auto missing = rd.lookup(container_id(4));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ENOENT);
    EXPECT_NE(missing.error().message.find("no runtime bundle"), std::string::npos);
    auto traversal = rd.lookup("../../../etc/passwd");
    ASSERT_FALSE(traversal);
    EXPECT_NE(traversal.error().message.find("is not a container id"), std::string::npos);
}

TEST(RuntimeState, BadOrHugeConfigIsAClearError) {
    TempDir t;
    RuntimeStateReader rd({t / "containerd", t / "crio"});
    makeFile(rd.containerd_config(container_id(5)), "{\"annotations\": {\"k\": ");
    auto bad = rd.lookup(container_id(5));
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find(rd.containerd_config(container_id(5)) + ": bad JSON"),
              std::string::npos)
        << bad.error().message;
    makeFile(rd.crio_config(container_id(6)),
             std::string(RuntimeStateReader::kMaxConfigBytes + 1, ' '));
    auto huge = rd.lookup(container_id(6));
    ASSERT_FALSE(huge);
    EXPECT_NE(huge.error().message.find("more than the"), std::string::npos)
        << huge.error().message;
}

namespace {

// A containerd (or CRI-O) node in the image of kubelet's: systemd driver, v2.
struct Node {
    TempDir t;
    FakeCgroupFs fs{t / "cg", CgroupVersion::V2};
    FakePodLogs logs{t / "log"};
    FakeProc proc{t / "proc"};
    KubeLayout L;
    RuntimeStateReader rd{{t / "run-containerd", t / "run-crio"}};
    CgroupMonitor m;

    explicit Node(Runtime runtime = Runtime::Containerd) {
        L.driver = CgroupDriver::Systemd;
        L.runtime = runtime;
        fs.cgroup(L.kubepods(), 0);
        fs.cgroup(L.qos_dir(QosClass::Burstable), 0);
    }
    std::string pod(unsigned n, uint64_t mib) const {
        const std::string d = L.pod_dir(QosClass::Burstable, pod_uid(n));
        fs.cgroup(d, mib * MiB);
        return d;
    }
    void container(unsigned pod, unsigned id, uint64_t mib, const std::string& comm) const {
        const std::string d =
            L.pod_dir(QosClass::Burstable, pod_uid(pod)) + "/" + L.container_name(container_id(id));
        fs.cgroup(d, mib * MiB);
        fs.procs(d, std::to_string(4000 + id) + "\n");
        proc.comm(static_cast<int>(4000 + id), comm);
    }
    void state(unsigned id, const std::string& ns, const std::string& pod, unsigned pod_n,
               const std::string& name, bool sandbox = false) const {
        if (L.runtime == Runtime::Crio)
            makeFile(rd.crio_config(container_id(id)), crio_config(ns, pod, pod_uid(pod_n), name));
        else
            makeFile(rd.containerd_config(container_id(id)),
                     containerd_config(ns, pod, pod_uid(pod_n), name, sandbox));
    }
    void configure() {
        CgroupMonitor::Settings s;
        s.cgroup_root = t / "cg";
        s.proc_root = proc.dir();
        s.pod_logs_dir = logs.pods_dir();
        s.runtime_state = rd.roots();
        ASSERT_TRUE(m.configure(s));
        m.refresh(std::chrono::seconds(1));
    }
    std::map<std::string, CgroupInfo> containers(unsigned pod_n) {
        std::map<std::string, CgroupInfo> out;
        auto r = m.report(10);
        for (const auto& p : r.top)
            if (p.pod_uid == pod_uid(pod_n))
                for (auto& c : m.containers(p)) out[c.container_id] = c;
        return out;
    }
};

}  // namespace

// Two containers, no links (logs not mounted): before, both were unnamed.
TEST(RuntimeNames, ContainerdStateNamesContainersWithoutLinks) {
    Node n;
    n.pod(1, 300);
    n.container(1, 10, 1, "pause");
    n.container(1, 11, 200, "api");
    n.container(1, 12, 40, "shipper");
    n.logs.pod("default", "api", pod_uid(1));
    n.state(10, "default", "api", 1, "", /*sandbox=*/true);
    n.state(11, "default", "api", 1, "api");
    n.state(12, "default", "api", 1, "log-shipper");
    n.configure();
    auto cs = n.containers(1);
    ASSERT_EQ(cs.size(), 3u);
    EXPECT_EQ(cs[container_id(11)].container_name, "api");
    EXPECT_EQ(cs[container_id(12)].container_name, "log-shipper");
    EXPECT_NE(cs[container_id(12)].note.find("containerd"), std::string::npos);
    EXPECT_EQ(cs[container_id(10)].kind, CgroupKind::Sandbox);
    EXPECT_EQ(cs[container_id(10)].container_name, "");
}

TEST(RuntimeNames, CrioStateNamesContainersWithoutLinks) {
    Node n(Runtime::Crio);
    n.pod(2, 300);
    n.container(2, 20, 1, "pause");
    n.container(2, 21, 200, "nginx");
    n.container(2, 22, 50, "php");
    n.logs.pod("web", "front", pod_uid(2));
    n.state(21, "web", "front", 2, "nginx");
    n.state(22, "web", "front", 2, "php-fpm");
    n.configure();
    auto cs = n.containers(2);
    EXPECT_EQ(cs[container_id(21)].container_name, "nginx");
    EXPECT_EQ(cs[container_id(22)].container_name, "php-fpm");
    EXPECT_EQ(cs[container_id(22)].runtime, ContainerRuntime::Crio);
}

// A link for this id that names another pod than the one with this UID (left
// over, or the pod re-created): stale, so the runtime state names the
// container; and a pod without /var/log/pods gets its names from it too.
TEST(RuntimeNames, StaleLinkAndMissingPodLogsFallBackToTheRuntimeState) {
    Node n;
    n.pod(3, 300);
    n.container(3, 30, 1, "pause");
    n.container(3, 31, 200, "eater");
    n.container(3, 32, 20, "helper");
    n.logs.pod("batch", "greedy", pod_uid(3));
    // The link for 31 says pod "old-greedy": not the pod with this UID.
    n.logs.container("batch", "old-greedy", pod_uid(3), "stale-name", container_id(31));
    n.state(31, "batch", "greedy", 3, "eater");
    n.state(32, "batch", "greedy", 3, "helper");
    n.configure();
    auto cs = n.containers(3);
    EXPECT_EQ(cs[container_id(31)].container_name, "eater");
    EXPECT_EQ(cs[container_id(32)].container_name, "helper");

    // No log directory at all for pod 4: the pod is named from the runtime.
    n.pod(4, 900);
    n.container(4, 41, 800, "big");
    n.state(41, "ml", "trainer", 4, "train");
    n.m.refresh(std::chrono::seconds(1));
    auto r = n.m.report(5);
    ASSERT_FALSE(r.top.empty());
    EXPECT_EQ(r.top[0].pod_uid, pod_uid(4));
    EXPECT_EQ(r.top[0].pod_namespace, "ml");
    EXPECT_EQ(r.top[0].pod_name, "trainer");
    ASSERT_FALSE(r.containers.empty());
    EXPECT_EQ(r.containers[0].container_name, "train");
    EXPECT_EQ(r.containers[0].pod_name, "trainer");

    // The kernel's victim is named the same way.
    KernelOomEvent e;
    e.pid = 4041;
    e.task = "big";
    e.memcg_oom = true;
    e.task_memcg = "/" + n.L.pod_dir(QosClass::Burstable, pod_uid(4)) + "/" +
                   n.L.container_name(container_id(41));
    CgroupRef v = attribute_oom_kill(e, n.m).cgroup;
    EXPECT_EQ(v.pod_uid, pod_uid(4));
    EXPECT_EQ(v.pod_namespace, "ml");
    EXPECT_EQ(v.pod_name, "trainer");
    EXPECT_EQ(v.container_name, "train");
}

// A good link wins over the runtime state; runtime state that names another
// pod UID is not believed; the only-log-directory rule comes last.
TEST(RuntimeNames, PrecedenceLinkThenRuntimeStateThenOnlyLogDirectory) {
    Node n;
    n.pod(5, 300);
    n.container(5, 50, 1, "pause");
    n.container(5, 51, 200, "a");
    n.container(5, 52, 50, "b");
    n.logs.pod("ns", "p", pod_uid(5));
    n.logs.container("ns", "p", pod_uid(5), "from-link", container_id(51));
    n.state(51, "ns", "p", 5, "from-state");
    n.state(52, "ns", "other", 6, "wrong-pod");  // another pod's UID
    // Pod 7: one logged container, no link, no runtime state.
    n.pod(7, 100);
    n.container(7, 70, 1, "pause");
    n.container(7, 71, 60, "solo");
    n.logs.pod("ns", "solo", pod_uid(7));
    n.logs.container("ns", "solo", pod_uid(7), "solo-dir", container_id(71), /*link=*/false);
    n.configure();
    auto cs = n.containers(5);
    EXPECT_EQ(cs[container_id(51)].container_name, "from-link");
    EXPECT_EQ(cs[container_id(52)].container_name, "");
    EXPECT_NE(cs[container_id(52)].note.find("names pod " + pod_uid(6)), std::string::npos)
        << cs[container_id(52)].note;

    // Pod 7: the only log directory names it.
    auto c7 = n.containers(7);
    EXPECT_EQ(c7[container_id(71)].container_name, "solo-dir");
    EXPECT_NE(c7[container_id(71)].note.find("only log directory"), std::string::npos);
}

// Bad runtime state is a note, not a crash or a wrong name.
TEST(RuntimeNames, BadStateIsANote) {
    Node n;
    n.pod(8, 100);
    n.container(8, 81, 60, "x");
    n.container(8, 82, 30, "y");
    n.logs.pod("ns", "p8", pod_uid(8));
    makeFile(n.rd.containerd_config(container_id(81)), "{\"annotations\": [");
    n.configure();
    auto cs = n.containers(8);
    EXPECT_EQ(cs[container_id(81)].container_name, "");
    EXPECT_NE(cs[container_id(81)].note.find("bad JSON"), std::string::npos)
        << cs[container_id(81)].note;
    EXPECT_EQ(cs[container_id(82)].container_name, "");
}
