// What `oomguardctl status` and `top` show, as plain data, and its text and
// JSON renderings. No D-Bus here, so the formatting is unit-tested directly.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/heaviest_source.hpp"
#include "core/oom_kill.hpp"
#include "core/prediction.hpp"

namespace oomguard::ctl {

struct StatusReport {
    std::string version, state, mode, config_path, last_error;
    bool dry_run = false;
    uint64_t mem_available = 0, mem_total = 0, threshold = 0, warn_threshold = 0;
    uint64_t trigger_count = 0, trigger_failures = 0, last_trigger_usec = 0, kernel_oom_kills = 0;
    std::string target_cgroup, target_namespace, target_pod;  // named at the last trigger
    // D-Bus LastVictim: realtime_usec 0 when none; the pod is its name, or its
    // uid when the name is unknown (cgroup.pod_name holds either).
    OomKill victim;
    // D-Bus PredictedVictim: who the kernel would kill now; pid 0 when unknown.
    PredictedTask predicted;
    uint64_t predicted_usec = 0;  // realtime of the scan
    // D-Bus AuditFindings: (check, count) of the node audit's active findings.
    std::vector<std::pair<std::string, uint32_t>> audit;
    std::vector<HeaviestRow> top;  // the heaviest 3
};

std::string render_status_text(const StatusReport& s, uint64_t now_usec);
std::string render_status_json(const StatusReport& s);
std::string render_top_text(const std::vector<HeaviestRow>& rows);
std::string render_top_json(const std::vector<HeaviestRow>& rows);

// "2024-05-01 12:00:00 CEST", or "never" for 0.
std::string format_time(uint64_t usec);
// "3min 2s ago"; for `now` before `then`, "just now".
std::string format_ago(uint64_t then_usec, uint64_t now_usec);

}  // namespace oomguard::ctl
