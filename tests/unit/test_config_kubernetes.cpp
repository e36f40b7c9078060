// The [kubernetes] keys the cgroup code reads, including the two it adds
// (kubepods_cgroup, scan_budget): values, defaults and errors with line numbers.
#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace oomguard;

TEST(CgroupConfig, DefaultsAndValues) {
    auto d = parse_config("", "t.toml");
    ASSERT_TRUE(d.config);
    EXPECT_TRUE(d.config->kubernetes.log_heaviest);
    EXPECT_EQ(d.config->kubernetes.kubepods_cgroup, "");
    EXPECT_EQ(d.config->kubernetes.scan_budget, std::chrono::milliseconds(20));
    EXPECT_EQ(d.config->kubernetes.exclude_namespaces, std::vector<std::string>{"kube-system"});
    EXPECT_EQ(d.config->paths.kmsg, "/dev/kmsg");
    EXPECT_EQ(d.config->paths.containerd_state, "/run/containerd");
    EXPECT_EQ(d.config->paths.crio_storage, "/run/containers/storage");

    auto c = parse_config(
        "[kubernetes]\nkubepods_cgroup = \"kubelet.slice/kubelet-kubepods.slice\"\nscan_budget = "
        "\"5ms\"\n"
        "exclude_namespaces = [\"kube-system\", \"monitoring\"]\nkill_guaranteed = true\n"
        "[action]\nmode = \"kill-cgroup\"\nfallback_sysrq = false\n"
        "[paths]\ncontainerd_state = \"/host/run/containerd\"\ncrio_storage = \"/host/crio\"\n",
        "t.toml");
    ASSERT_TRUE(c.config) << c.errors[0].to_string("t.toml");
    EXPECT_EQ(c.config->kubernetes.kubepods_cgroup, "kubelet.slice/kubelet-kubepods.slice");
    EXPECT_EQ(c.config->kubernetes.scan_budget, std::chrono::milliseconds(5));
    EXPECT_EQ(c.config->kubernetes.exclude_namespaces.size(), 2u);
    EXPECT_TRUE(c.config->kubernetes.kill_guaranteed);
    EXPECT_EQ(c.config->action.mode, ActionMode::KillCgroup);
    EXPECT_FALSE(c.config->action.fallback_sysrq);
    // The effective config renders the new keys, and re-parses to the same values.
    auto again = parse_config(render_config(*c.config), "rendered.toml");
    ASSERT_TRUE(again.config);
    EXPECT_EQ(again.config->kubernetes.scan_budget, std::chrono::milliseconds(5));
    EXPECT_EQ(again.config->kubernetes.kubepods_cgroup, "kubelet.slice/kubelet-kubepods.slice");
    EXPECT_EQ(again.config->paths.containerd_state, "/host/run/containerd");
    EXPECT_EQ(again.config->paths.crio_storage, "/host/crio");
}

TEST(CgroupConfig, ErrorsNameKeyAndLine) {
    auto c = parse_config(
        "[kubernetes]\nscan_budget = 5\nkubepods_cgroup = \"../escape\"\nscan_budget2 = 1\n",
        "t.toml");
    ASSERT_FALSE(c.config);
    ASSERT_EQ(c.errors.size(), 3u);
    EXPECT_EQ(c.errors[0].to_string("t.toml").substr(0, 35), "t.toml:2: kubernetes.scan_budget: a");
    EXPECT_NE(c.errors[0].message.find("unit"), std::string::npos);
    EXPECT_EQ(c.errors[1].line, 3);
    EXPECT_NE(c.errors[1].message.find(".."), std::string::npos);
    EXPECT_EQ(c.errors[2].key, "kubernetes.scan_budget2");
    auto r = parse_config("[kubernetes]\nscan_budget = \"2s\"\n", "t.toml");
    ASSERT_FALSE(r.config);
    EXPECT_NE(r.errors[0].message.find("between 1ms and 1s"), std::string::npos);
}
