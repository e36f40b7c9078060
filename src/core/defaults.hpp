// The default of every setting that both the config and a domain settings
// struct carry, written once: config.hpp's Config and PolicySettings /
// KillPolicy / CgroupMonitor::Settings / RuntimeStateRoots take their initial
// values from here, so they cannot drift apart.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "util/units.hpp"

namespace oomguard::defaults {

inline constexpr Duration kRepeatAfter = std::chrono::seconds(1);
inline constexpr Duration kMinInterval = std::chrono::milliseconds(1);
// Shortest interval while memory is steady.
inline constexpr Duration kIdleInterval = std::chrono::milliseconds(100);
inline constexpr Duration kMaxInterval = std::chrono::seconds(2);
inline constexpr uint64_t kFillRate = 12ull << 30;  // bytes/s, the estimate's floor

// kill-cgroup: namespaces never killed, and whether Guaranteed pods may be.
inline constexpr std::array<std::string_view, 1> kExcludeNamespaces{"kube-system"};
inline constexpr bool kKillGuaranteed = false;

// The host paths the config's [paths] and [kubernetes] and the cgroup code's
// settings start from.
inline constexpr std::string_view kSysrqTrigger = "/proc/sysrq-trigger";
inline constexpr std::string_view kProcRoot = "/proc";
inline constexpr std::string_view kCgroupRoot = "/sys/fs/cgroup";
inline constexpr std::string_view kPodLogsDir = "/var/log/pods";
inline constexpr std::string_view kContainerdState = "/run/containerd";
inline constexpr std::string_view kCrioStorage = "/run/containers/storage";

}  // namespace oomguard::defaults
