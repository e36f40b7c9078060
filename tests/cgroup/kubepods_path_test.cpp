// Classification of kubelet's cgroup names: both drivers, all QoS classes, the
// runtimes' container names, UID normalisation, and names that are not kubelet's.
#include "cgroup/kubepods_path.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace oomguard;

namespace {
const std::string kUid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const std::string kUidSystemd = "1b4e28ba_2fa1_11d2_883f_0016d3cca427";
const std::string kId = "4c01db0b339c4f3a8e2d0a0b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f";
}  // namespace

TEST(PodUid, NormalisesUnderscoresAndCase) {
    EXPECT_EQ(normalize_pod_uid(kUidSystemd).value(), kUid);
    EXPECT_EQ(normalize_pod_uid(kUid).value(), kUid);
    EXPECT_EQ(normalize_pod_uid("1B4E28BA_2FA1_11D2_883F_0016D3CCA427").value(), kUid);
    // Static pods: a 32-hex-digit config hash.
    EXPECT_EQ(normalize_pod_uid("e3b0c44298fc1c149afbf4c8996fb924").value(),
              "e3b0c44298fc1c149afbf4c8996fb924");
}

TEST(PodUid, RejectsMalformedWithReason) {
    auto why = [](std::string_view raw) {
        Result<std::string> r = normalize_pod_uid(raw);
        return r ? "accepted as " + *r : r.error().message;
    };
    EXPECT_NE(why("").find("empty"), std::string::npos);
    EXPECT_NE(why("1b4e28ba-2fa1-11d2-883f-0016d3cca42z").find("contains \"z\""), std::string::npos)
        << why("1b4e28ba-2fa1-11d2-883f-0016d3cca42z");
    EXPECT_NE(why("1b4e28ba2fa1-11d2-883f-0016d3cca4271").find("not a UUID"), std::string::npos)
        << why("1b4e28ba2fa1-11d2-883f-0016d3cca4271");
    EXPECT_NE(why("abc").find("neither a UUID nor"), std::string::npos) << why("abc");
    EXPECT_NE(why("../../etc").find("contains"), std::string::npos) << why("../../etc");
}

TEST(PodLevel, CgroupfsQosLevelsAndPods) {
    auto b = classify_pod_level("burstable");
    EXPECT_EQ(b.kind, KubeKind::QosLevel);
    EXPECT_EQ(b.qos, QosClass::Burstable);
    EXPECT_EQ(b.driver, CgroupDriver::Cgroupfs);
    EXPECT_EQ(classify_pod_level("besteffort").qos, QosClass::BestEffort);
    auto p = classify_pod_level("pod" + kUid);
    EXPECT_EQ(p.kind, KubeKind::Pod);
    EXPECT_EQ(p.pod_uid, kUid);
    EXPECT_EQ(p.driver, CgroupDriver::Cgroupfs);
    EXPECT_EQ(p.qos, QosClass::Unknown);  // decided by where it sits
}

TEST(PodLevel, SystemdQosLevelsAndPodsCarryTheirQos) {
    auto b = classify_pod_level("kubepods-burstable.slice");
    EXPECT_EQ(b.kind, KubeKind::QosLevel);
    EXPECT_EQ(b.qos, QosClass::Burstable);
    EXPECT_EQ(b.driver, CgroupDriver::Systemd);
    EXPECT_EQ(classify_pod_level("kubepods-besteffort.slice").qos, QosClass::BestEffort);

    auto pb = classify_pod_level("kubepods-burstable-pod" + kUidSystemd + ".slice");
    EXPECT_EQ(pb.kind, KubeKind::Pod);
    EXPECT_EQ(pb.qos, QosClass::Burstable);
    EXPECT_EQ(pb.pod_uid, kUid);
    auto pe = classify_pod_level("kubepods-besteffort-pod" + kUidSystemd + ".slice");
    EXPECT_EQ(pe.qos, QosClass::BestEffort);
    auto pg = classify_pod_level("kubepods-pod" + kUidSystemd + ".slice");
    EXPECT_EQ(pg.kind, KubeKind::Pod);
    EXPECT_EQ(pg.qos, QosClass::Guaranteed);
    // kind / rootless: kubelet-kubepods prefix.
    auto pk = classify_pod_level("kubelet-kubepods-burstable-pod" + kUidSystemd + ".slice");
    EXPECT_EQ(pk.kind, KubeKind::Pod);
    EXPECT_EQ(pk.qos, QosClass::Burstable);
}

TEST(PodLevel, UnknownNamesSayWhy) {
    for (const char* n :
         {"foo", "system.slice", "kubepods-foo.slice", "podnot-a-uid", "pod", "guaranteed",
          "kubepods-burstable-podXYZ.slice", "other-pod1234.slice", ""}) {
        auto k = classify_pod_level(n);
        EXPECT_EQ(k.kind, KubeKind::Unknown) << n;
        EXPECT_FALSE(k.reason.empty()) << n;
    }
    EXPECT_NE(classify_pod_level("guaranteed").reason.find("directly under kubepods"),
              std::string::npos);
}

TEST(ContainerLevel, RuntimesAndDrivers) {
    auto bare = classify_container_level(kId);
    EXPECT_EQ(bare.kind, KubeKind::Container);
    EXPECT_EQ(bare.container_id, kId);
    EXPECT_EQ(bare.driver, CgroupDriver::Cgroupfs);
    EXPECT_EQ(bare.runtime, ContainerRuntime::Unknown);

    struct Case {
        std::string name;
        KubeKind kind;
        ContainerRuntime rt;
        CgroupDriver driver;
    } cases[] = {
        {"cri-containerd-" + kId + ".scope", KubeKind::Container, ContainerRuntime::Containerd,
         CgroupDriver::Systemd},
        {"crio-" + kId + ".scope", KubeKind::Container, ContainerRuntime::Crio,
         CgroupDriver::Systemd},
        {"docker-" + kId + ".scope", KubeKind::Container, ContainerRuntime::Docker,
         CgroupDriver::Systemd},
        {"crio-conmon-" + kId + ".scope", KubeKind::Conmon, ContainerRuntime::Crio,
         CgroupDriver::Systemd},
        {"crio-" + kId, KubeKind::Container, ContainerRuntime::Crio, CgroupDriver::Cgroupfs},
        {"crio-conmon-" + kId, KubeKind::Conmon, ContainerRuntime::Crio, CgroupDriver::Cgroupfs},
    };
    for (const auto& c : cases) {
        auto k = classify_container_level(c.name);
        EXPECT_EQ(k.kind, c.kind) << c.name;
        EXPECT_EQ(k.runtime, c.rt) << c.name;
        EXPECT_EQ(k.driver, c.driver) << c.name;
        EXPECT_EQ(k.container_id, kId) << c.name;
    }
}

TEST(ContainerLevel, MalformedAndUnknown) {
    const std::vector<std::string> names = {
        "cri-containerd-xyz.scope",  "foo.scope", "init.scope", "crio-", "abc", "container",
        "docker-" + kId + "x.scope", ""};
    for (const auto& n : names) {
        auto k = classify_container_level(n);
        EXPECT_EQ(k.kind, KubeKind::Unknown) << n;
        EXPECT_FALSE(k.reason.empty()) << n;
    }
    EXPECT_NE(
        classify_container_level("cri-containerd-xyz.scope").reason.find("malformed container id"),
        std::string::npos);
}

TEST(CgroupPath, AllLayouts) {
    struct Case {
        std::string path;
        KubeKind kind;
        QosClass qos;
        CgroupDriver driver;
        std::string kubepods;
        bool has_container;
    } cases[] = {
        {"/kubepods/burstable/pod" + kUid + "/" + kId, KubeKind::Container, QosClass::Burstable,
         CgroupDriver::Cgroupfs, "/kubepods", true},
        {"/kubepods/besteffort/pod" + kUid + "/" + kId, KubeKind::Container, QosClass::BestEffort,
         CgroupDriver::Cgroupfs, "/kubepods", true},
        {"/kubepods/pod" + kUid + "/" + kId, KubeKind::Container, QosClass::Guaranteed,
         CgroupDriver::Cgroupfs, "/kubepods", true},
        {"/kubepods/pod" + kUid, KubeKind::Pod, QosClass::Guaranteed, CgroupDriver::Cgroupfs,
         "/kubepods", false},
        {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidSystemd +
             ".slice/cri-containerd-" + kId + ".scope",
         KubeKind::Container, QosClass::Burstable, CgroupDriver::Systemd, "/kubepods.slice", true},
        {"/kubepods.slice/kubepods-pod" + kUidSystemd + ".slice/crio-" + kId + ".scope",
         KubeKind::Container, QosClass::Guaranteed, CgroupDriver::Systemd, "/kubepods.slice", true},
        {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + kUidSystemd +
             ".slice/crio-conmon-" + kId + ".scope",
         KubeKind::Conmon, QosClass::BestEffort, CgroupDriver::Systemd, "/kubepods.slice", true},
        // Missing QoS level: the systemd name still says BestEffort.
        {"/kubepods.slice/kubepods-besteffort-pod" + kUidSystemd + ".slice/docker-" + kId +
             ".scope",
         KubeKind::Container, QosClass::BestEffort, CgroupDriver::Systemd, "/kubepods.slice", true},
        // A prefix (kubelet --cgroup-root, a test parent) and a runtime's own sub-cgroup.
        {"/oomguard-test-42/kubepods/burstable/pod" + kUid + "/crio-" + kId + "/container",
         KubeKind::Container, QosClass::Burstable, CgroupDriver::Cgroupfs,
         "/oomguard-test-42/kubepods", true},
        {"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
         "kubelet-kubepods-besteffort-pod" +
             kUidSystemd + ".slice/cri-containerd-" + kId + ".scope",
         KubeKind::Container, QosClass::BestEffort, CgroupDriver::Systemd,
         "/kubelet.slice/kubelet-kubepods.slice", true},
    };
    for (const auto& c : cases) {
        KubePath p = classify_cgroup_path(c.path);
        EXPECT_TRUE(p.in_kubepods) << c.path;
        EXPECT_EQ(p.kind, c.kind) << c.path << ": " << p.reason;
        EXPECT_EQ(p.qos, c.qos) << c.path;
        EXPECT_EQ(p.driver, c.driver) << c.path;
        EXPECT_EQ(p.kubepods, c.kubepods) << c.path;
        EXPECT_EQ(p.pod_uid, kUid) << c.path;
        EXPECT_EQ(p.container_id, c.has_container ? kId : "") << c.path;
    }
}

TEST(CgroupPath, OutsideAndPartial) {
    auto p = classify_cgroup_path("/system.slice/sshd.service");
    EXPECT_FALSE(p.in_kubepods);
    EXPECT_EQ(p.reason, "not under kubepods");
    EXPECT_FALSE(classify_cgroup_path("/").in_kubepods);
    EXPECT_FALSE(classify_cgroup_path("").in_kubepods);
    auto k = classify_cgroup_path("/kubepods");
    EXPECT_TRUE(k.in_kubepods);
    EXPECT_EQ(k.kind, KubeKind::Unknown);
    auto q = classify_cgroup_path("/kubepods/burstable");
    EXPECT_EQ(q.kind, KubeKind::QosLevel);
    EXPECT_EQ(q.qos, QosClass::Burstable);
    auto bad = classify_cgroup_path("/kubepods/burstable/podzzz/" + kId);
    EXPECT_EQ(bad.kind, KubeKind::QosLevel);  // the deepest level understood
    EXPECT_NE(bad.reason.find("podzzz"), std::string::npos) << bad.reason;
    auto bad2 = classify_cgroup_path("/kubepods/pod" + kUid + "/not-a-container");
    EXPECT_EQ(bad2.kind, KubeKind::Pod);
    EXPECT_FALSE(bad2.reason.empty());
    auto nested = classify_cgroup_path("/kubepods/burstable/besteffort/pod" + kUid);
    EXPECT_EQ(nested.kind, KubeKind::QosLevel);
    EXPECT_FALSE(nested.reason.empty());
}

TEST(CgroupPath, RandomInputNeverCrashes) {
    std::mt19937 rng(1234);
    const std::string alphabet =
        "/kubepods.slice-_burstablebesteffortpodcri-containerd0123456789abcdef.scope";
    for (int i = 0; i < 20000; ++i) {
        std::string s;
        size_t len = rng() % 120;
        for (size_t j = 0; j < len; ++j)
            s += (rng() % 8 == 0) ? static_cast<char>(rng() % 256)
                                  : alphabet[rng() % alphabet.size()];
        KubePath p = classify_cgroup_path(s);
        if (p.kind == KubeKind::Unknown && p.in_kubepods) {
            // An unknown pod level always says why.
            EXPECT_FALSE(p.reason.empty()) << s;
        }
        (void)classify_pod_level(s);
        (void)classify_container_level(s);
    }
}
