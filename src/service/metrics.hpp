// Prometheus metrics for node_exporter's textfile collector: rendered into a
// reused buffer and replaced atomically (temp file in the same directory, then
// rename), so a scrape never sees half a file. Written every [metrics] interval
// and on each trigger; a failure is logged once, counted, and never stops the loop.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/event_sink.hpp"
#include "core/heaviest_source.hpp"
#include "service/journal.hpp"

namespace oomguard {

class MetricsWriter final : public EventSink {
public:
    MetricsWriter(Journal& journal, const Config::Metrics& settings);

    // The cgroup code's ranking, for oomguard_heaviest_pod_working_set_bytes.
    void set_heaviest_source(HeaviestSource* source) { heaviest_ = source; }

    void on_state(const DaemonState& s) override;
    void on_trigger(const DaemonState& s, const TriggerReport& t) override;
    void on_config(const DaemonState& s, const Config& c) override;

    // Renders and replaces the file now; no-op when no textfile is configured.
    Status write(const DaemonState& s);
    bool enabled() const { return !settings_.textfile.empty(); }
    uint64_t writes() const { return writes_; }
    uint64_t failures() const { return failures_; }

    // The heaviest pods exported as a labelled gauge.
    static constexpr size_t kMaxPods = 10;

    // The file's text. Pods are (namespace, pod, working set) aggregated from
    // the rows: a pod-level row if present, else the sum of its containers.
    static void render(const DaemonState& s, const std::vector<HeaviestRow>& rows,
                       uint64_t write_failures, std::string& out);
    // Prometheus label-value escaping: backslash, double quote, newline.
    static void append_label_value(std::string& out, std::string_view value);

private:
    Journal& journal_;
    Config::Metrics settings_;
    HeaviestSource* heaviest_ = nullptr;
    std::string buf_;
    std::string tmp_path_;
    Duration last_write_{0};
    bool written_once_ = false;
    bool failing_ = false;
    uint64_t writes_ = 0;
    uint64_t failures_ = 0;

    void apply(const Config::Metrics& m);
    void write_logged(const DaemonState& s);
};

}  // namespace oomguard
