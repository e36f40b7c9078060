// The daemon: one poll loop (epoll, src/app/loop_poller.hpp; its timeout: the next sample) over a signalfd,
// the PSI trigger fd and any extra sources (/dev/kmsg, the D-Bus thread's
// eventfd). No threads on the hot path; the D-Bus side runs in its own thread
// (src/bus/bus_thread.hpp).
// It owns the state (DaemonState) and is the Host the components see
// (src/core/host.hpp); the wiring (src/app/wiring.hpp) registers them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "actions/trigger.hpp"
#include "app/loop_poller.hpp"
#include "config/config.hpp"
#include "core/action_result.hpp"
#include "core/clock.hpp"
#include "core/daemon_state.hpp"
#include "core/event_sink.hpp"
#include "core/host.hpp"
#include "core/loop_source.hpp"
#include "core/options.hpp"
#include "core/trigger_hook.hpp"
#include "policy/policy.hpp"
#include "policy/wake.hpp"
#include "sensors/meminfo.hpp"
#include "sensors/psi.hpp"
#include "service/journal.hpp"
#include "service/notifier.hpp"

namespace oomguard {

class Daemon final : public Host {
public:
    // Decisions and timestamps are read on `clock` (tests drive it by hand); the
    // loop still sleeps in real time (LoopPoller).
    explicit Daemon(DaemonOptions opts, const Clock& clock = monotonic_clock());
    ~Daemon() override;

    // Loads the config and opens the sensors; prints errors and returns false on failure.
    bool init();
    // Runs until SIGTERM/SIGINT; returns the exit code.
    int run();

    void add_source(LoopSource* s) { sources_.push_back(s); }
    void add_sink(EventSink* s) { sinks_.push_back(s); }
    void set_trigger_hook(TriggerHook* h) { hook_ = h; }

    // Host
    const DaemonState& state() const override { return state_; }
    const Config& config() const override { return config_; }
    Log& log() override { return journal_; }
    void record_oom_kill(const OomKill& kill) override;
    void record_oom_request_ignored() override { ++state_.oom_requests_ignored_total; }
    void record_cgroup_kill() override { ++state_.cgroup_kills_total; }
    void record_prediction(const PredictedTask& p) override { state_.prediction = p; }
    void record_prediction_result(bool matched) override {
        ++(matched ? state_.predictions_matched_total : state_.predictions_missed_total);
    }
    void record_audit(const AuditCounts& counts) override { state_.audit = counts; }
    Status reload() override;

    Journal& journal() { return journal_; }
    // For what the wiring builds around the daemon (src/app/wiring.cpp).
    const Clock& clock() const { return clock_; }
    // The daemon's meminfo reader, shared with the OOM reporter (one open file,
    // one parser; it follows a reload's new proc root).
    MeminfoReader& meminfo() { return meminfo_; }
    void request_stop() { stop_ = true; }

private:
    DaemonOptions opts_;
    const Clock& clock_;
    Journal journal_;
    Notifier notifier_;
    Config config_;
    std::unique_ptr<Policy> policy_;
    MeminfoReader meminfo_;
    PsiTrigger psi_;
    SysrqTrigger trigger_{""};  // from config_, kept so that firing it copies nothing
    DaemonState state_;
    // The last action's outcome: a dry-run did not use up the real action's turn.
    TriggerOutcome last_outcome_ = TriggerOutcome::NotHandled;
    std::vector<LoopSource*> sources_;
    std::vector<EventSink*> sinks_;
    TriggerHook* hook_ = nullptr;

    int lock_fd_ = -1;  // the instance lock, held for the process's life
    WakeCoalescer wake_;     // source timeouts ride on the next sample
    LoopPoller poller_;      // epoll, registered again when the fd set changes
    uint64_t fd_generation_ = 0;  // bumped where sensors and sinks may reopen fds
    bool said_ppoll_ = false;
    Duration next_tick_{0};  // when the next sample is due; the loop sleeps until then
    int signal_fd_ = -1;
    bool stop_ = false;
    bool sample_failing_ = false;
    uint64_t counted_episode_ = 0;  // the last episode counted in episodes_total
    Duration last_status_{0};
    Duration last_terminal_status_{0};
    Duration last_watchdog_{0};
    char status_buf_[256];
    char sent_status_[256];  // the last STATUS= we sent
    size_t sent_status_len_ = 0;
    // What status_line() shows, as last formatted.
    struct StatusInputs {
        uint64_t available = 0, threshold = 0, triggers = 0;
        MemState state = MemState::Ok;
        bool dry_run = false, no_error = true;
        bool operator==(const StatusInputs&) const = default;
    };
    StatusInputs status_inputs_;

    Config apply_overrides(Config c) const;
    Status open_sensors(const Config& c);
    void tick();
    void finish_tick(Duration now, Duration next, bool force_status);  // watchdog, timer, STATUS
    bool act(const MemSample& s, const Decision& d);                   // true: the action happened
    void check_trigger();  // start/reload: can the trigger be opened for writing?
    void arm_timer(Duration d);
    void handle_signals();
    void update_status(Duration now, bool force);
    std::string_view status_line();
};

}  // namespace oomguard
