// The predicted victim and the node audit, on the daemon's side (issue 14).
// An OomPredictor thread rescans /proc while memory is below the warning level
// and runs the audit (at start, on reload and every kAuditEvery); this
// component wakes on its eventfd, names the predicted task's cgroup like every
// other (pod, container, QoS), records both in the daemon's state, and logs
// each audit finding once, with its fix. Nothing here runs on the trigger path.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "audit/node_audit.hpp"
#include "util/event_fd.hpp"
#include "cgroup/cgroup_monitor.hpp"
#include "core/clock.hpp"
#include "core/event_sink.hpp"
#include "core/host.hpp"
#include "core/loop_source.hpp"
#include "sensors/oom_predictor.hpp"

namespace oomguard {

class VictimPrediction final : public EventSink, public LoopSource {
public:
    static constexpr Duration kScanEvery = std::chrono::seconds(1);
    static constexpr Duration kScanBudget = std::chrono::milliseconds(500);
    static constexpr Duration kAuditEvery = std::chrono::minutes(10);

    VictimPrediction(Host& host, CgroupMonitor& monitor, const Clock& clock = monotonic_clock());
    ~VictimPrediction() override;

    // EventSink
    void on_config(const DaemonState&, const Config&) override;
    void on_state(const DaemonState&) override;
    void on_warning(const DaemonState& s) override { on_state(s); }
    // LoopSource
    Spec poll_spec() override;
    void dispatch(short revents) override;

    // For tests: run the audit now (in the predictor's thread).
    void request_audit();

private:
    void take_prediction();
    void take_audit();

    Host& host_;
    CgroupMonitor& monitor_;
    const Clock& clock_;
    EventFd wake_;
    std::string proc_root_;
    std::unique_ptr<OomPredictor> predictor_;
    Duration taken_at_{-1};
    std::string scan_error_;  // the scan error last logged ("": none, or it cleared)
    Duration next_audit_{0};
    AuditMemory audit_memory_;
    std::mutex audit_mu_;  // the audit's result, written by the predictor thread
    std::optional<std::vector<AuditFinding>> audit_result_;
};

}  // namespace oomguard
