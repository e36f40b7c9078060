// Prometheus metrics for node_exporter's textfile collector: rendered into a
// reused buffer and replaced atomically (temp file in the same directory, then
// rename), so a scrape never sees half a file. Written every [metrics] interval
// and on each trigger; a failure is logged once, counted, and never stops the loop.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "core/event_sink.hpp"
#include "core/heaviest_source.hpp"
#include "sensors/node_counters.hpp"
#include "service/journal.hpp"

namespace oomguard {

// What the file shows beside the DaemonState: node-wide kernel counters read at
// each write, the allocatable check, and the victims by namespace. An absent
// reading leaves its family out (a missing file, an older kernel).
struct MetricsExtras {
    std::optional<uint64_t> vmstat_oom_kills;       // oom_kill of <proc>/vmstat
    std::optional<PressureTotals> memory_pressure;  // <proc>/pressure/memory
    std::optional<bool> allocatable_enforced;       // nullopt: not Kubernetes, or unknown
    // OOM kills reported on kmsg, by (namespace, scope "node" or "memcg").
    std::map<std::pair<std::string, std::string>, uint64_t> victims;
};

class MetricsWriter final : public EventSink {
public:
    // The write interval is measured on `clock`.
    MetricsWriter(Journal& journal, const Config::Metrics& settings,
                  const Clock& clock = monotonic_clock());

    // The cgroup code's ranking, for oomguard_heaviest_pod_working_set_bytes.
    void set_heaviest_source(HeaviestSource* source) { heaviest_ = source; }
    // Whether kubelet enforces node allocatable (kubepods has a memory limit):
    // nullopt when not a Kubernetes node or unreadable. Called at each write.
    using AllocatableProbe = std::function<std::optional<bool>()>;
    void set_allocatable_probe(AllocatableProbe probe) { allocatable_ = std::move(probe); }

    void on_state(const DaemonState& s) override;
    void on_trigger(const DaemonState& s, const TriggerReport& t) override;
    void on_config(const DaemonState& s, const Config& c) override;
    void on_oom_kill(const DaemonState&, const OomKill& kill) override { count_victim(kill); }

    // Renders and replaces the file now; no-op when no textfile is configured.
    Status write(const DaemonState& s);
    bool enabled() const { return !settings_.textfile.empty(); }
    uint64_t writes() const { return writes_; }
    uint64_t failures() const { return failures_; }

    // The heaviest pods exported as a labelled gauge.
    static constexpr size_t kMaxPods = 10;
    // Distinct namespaces in oomguard_oom_victims_total; later ones count as
    // namespace="_other" (not a valid Kubernetes name), so the series stay bounded.
    static constexpr size_t kMaxVictimNamespaces = 64;
    static constexpr const char* kOtherNamespace = "_other";
    void count_victim(const OomKill& kill);

    // The file's text. Pods are (namespace, pod, working set) aggregated from
    // the rows: a pod-level row if present, else the sum of its containers.
    static void render(const DaemonState& s, const std::vector<HeaviestRow>& rows,
                       uint64_t write_failures, std::string& out, const MetricsExtras& extras = {});
    // Prometheus label-value escaping: backslash, double quote, newline.
    static void append_label_value(std::string& out, std::string_view value);

private:
    Journal& journal_;
    const Clock& clock_;
    Config::Metrics settings_;
    HeaviestSource* heaviest_ = nullptr;
    AllocatableProbe allocatable_;
    NodeCounters node_;  // proc root from the effective config (on_config)
    MetricsExtras extras_;
    std::set<std::string> victim_namespaces_;
    std::string buf_;
    std::string tmp_path_;
    Duration last_write_{0};
    bool written_once_ = false;
    bool failing_ = false;
    uint64_t writes_ = 0;
    uint64_t failures_ = 0;

    void apply(const Config::Metrics& m);
    void write_logged(const DaemonState& s);
    void read_node();  // refreshes extras_ from the kernel files and the probe
};

}  // namespace oomguard
