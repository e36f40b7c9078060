// The daemon: one ppoll() loop (its timeout: the next sample) over a signalfd,
// the PSI trigger fd and any extra sources (/dev/kmsg, the D-Bus thread's
// eventfd). No threads on the hot path; the D-Bus side runs in its own thread
// (src/bus/bus_thread.hpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actions/trigger.hpp"
#include "config/config.hpp"
#include "policy/policy.hpp"
#include "policy/wake.hpp"
#include "sensors/meminfo.hpp"
#include "sensors/psi.hpp"
#include "service/journal.hpp"
#include "service/notifier.hpp"

namespace oomguard {

struct DaemonOptions {
    std::string config_path;
    bool dry_run = false;
    std::optional<std::string> proc_root;
    std::optional<std::string> cgroup_root;
    LogTarget log_target = LogTarget::Auto;
    bool mlock = true;
    bool allow_insecure_config = false;  // tests only: skip the config owner/mode check
};

// An OOM kill the kernel reported on kmsg, mapped to its pod and container
// (fields are "" when unknown: not a kubepods cgroup, no pod log directory).
struct OomKillInfo {
    uint64_t realtime_usec = 0;  // when oomguard read the report
    int64_t pid = -1;
    std::string task;
    std::string cgroup;          // the kernel's task_memcg
    std::string constraint;      // CONSTRAINT_NONE (node-wide, e.g. sysrq), CONSTRAINT_MEMCG, ...
    bool memcg = false;          // the cgroup hit its own limit
    bool after_trigger = false;  // followed oomguard's trigger
    std::string pod_uid, pod_namespace, pod_name, container_name, container_id, qos;
    uint64_t rss_bytes = 0;  // the victim's RSS at the kill
};

// What an action did. NotHandled only comes from a TriggerHook (the daemon then
// writes sysrq); the daemon reports one of the other three to the sinks.
enum class TriggerOutcome { NotHandled, Acted, DryRun, Failed };
const char* to_string(TriggerOutcome o);
struct ActionResult {
    TriggerOutcome outcome = TriggerOutcome::NotHandled;
    std::string what;  // what was done, or why it failed / fell back
};

// What the daemon knows, for STATUS, D-Bus and metrics.
struct DaemonState {
    MemSample sample;
    Levels levels;
    MemState state = MemState::Ok;
    ActionMode mode = ActionMode::Sysrq;
    bool dry_run = false;
    uint64_t triggers_total = 0;
    uint64_t trigger_failures_total = 0;
    uint64_t warnings_total = 0;
    uint64_t episodes_total = 0;
    uint64_t kernel_oom_kills_total = 0;  // memcg OOM kills (pods hitting their limits), from kmsg
    uint64_t oom_kills_total = 0;         // every OOM kill on kmsg (memcg and node-wide)
    uint64_t oom_requests_ignored_total = 0;  // "OOM request ignored": sysrq found no eligible task
    uint64_t cgroup_kills_total = 0;          // kill-cgroup actions that killed a container
    OomKillInfo last_oom_kill;                // pid -1: none seen yet
    uint64_t last_trigger_realtime_usec = 0;  // 0: never
    // The last action's outcome (what on_trigger reports): Acted/DryRun count in
    // triggers_total, Failed in trigger_failures_total.
    TriggerOutcome last_outcome = TriggerOutcome::NotHandled;
    std::string last_action;  // what was done or why it failed, for the sinks
    // What the last action was: "sysrq" (written or failed), "kill-cgroup", or
    // "dry-run" (nothing written, whatever the mode).
    std::string last_action_kind;
    uint64_t samples_total = 0;
    uint64_t sample_errors_total = 0;
    std::string last_error;
    std::string config_path;
};

// Something else the loop polls (sd-bus, kmsg). timeout_ns < 0: none.
class LoopSource {
public:
    virtual ~LoopSource() = default;
    struct Spec {
        int fd = -1;
        short events = 0;
        int64_t timeout_ns = -1;
    };
    virtual Spec poll_spec() = 0;
    // Called when the fd is ready or the timeout passed (revents == 0).
    virtual void dispatch(short revents) = 0;
};

// Observers of what happened (D-Bus signals, metrics). Called after the effect.
class EventSink {
public:
    virtual ~EventSink() = default;
    virtual void on_warning(const DaemonState&) {}
    // ok: the action happened (state.last_outcome Acted or DryRun); !ok: Failed,
    // nothing was done (state.last_action says why). Every attempt is reported.
    virtual void on_trigger(const DaemonState&, bool /*ok*/) {}
    virtual void on_recovered(const DaemonState&, Duration /*episode*/) {}
    virtual void on_state(const DaemonState&) {}  // at most ~1/s, and on state changes
    virtual void on_config(const DaemonState&, const Config&) {}
    virtual void on_oom_kill(const DaemonState&) {}  // last_oom_kill was updated
};

// Extra work around the trigger: the kill-cgroup action instead of sysrq, and
// naming the heaviest cgroup after it. Installed by the cgroup code.
class TriggerHook {
public:
    virtual ~TriggerHook() = default;
    // Called after the action (never before the sysrq write): journal fields and
    // message text about the heaviest cgroup, from the ranking already held.
    virtual void describe(std::string& /*message*/, std::vector<LogField>& /*fields*/) {}
    // kill-cgroup mode only, bounded by [kubernetes] scan_budget. NotHandled:
    // the daemon writes sysrq (fallback), `what` says why.
    virtual ActionResult act(const Config&, bool /*dry_run*/) { return {}; }
};

class Daemon {
public:
    explicit Daemon(DaemonOptions opts);
    ~Daemon();

    // Loads the config and opens the sensors; prints errors and returns false on failure.
    bool init();
    // Runs until SIGTERM/SIGINT; returns the exit code.
    int run();

    void add_source(LoopSource* s) { sources_.push_back(s); }
    void add_sink(EventSink* s) { sinks_.push_back(s); }
    void set_trigger_hook(TriggerHook* h) { hook_ = h; }

    // Reports from the cgroup code (kmsg reader, kill-cgroup): update the
    // counters and tell the sinks.
    void record_oom_kill(const OomKillInfo& kill);
    void record_oom_request_ignored();
    void record_cgroup_kill() { ++state_.cgroup_kills_total; }

    const DaemonState& state() const { return state_; }
    const Config& config() const { return config_; }
    Journal& journal() { return journal_; }
    // Reload from the config path; returns false (and keeps the old config) on error.
    bool reload();
    void request_stop() { stop_ = true; }

private:
    DaemonOptions opts_;
    Journal journal_;
    Notifier notifier_;
    Config config_;
    std::unique_ptr<Policy> policy_;
    MeminfoReader meminfo_;
    PsiTrigger psi_;
    SysrqTrigger trigger_{""};  // from config_, kept so that firing it copies nothing
    DaemonState state_;
    std::vector<LoopSource*> sources_;
    std::vector<EventSink*> sinks_;
    TriggerHook* hook_ = nullptr;

    int lock_fd_ = -1;  // the instance lock, held for the process's life
    WakeCoalescer wake_;     // source timeouts ride on the next sample
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
    bool open_sensors(const Config& c, std::string& error);
    void tick();
    void finish_tick(Duration now, Duration next, bool force_status);  // watchdog, timer, STATUS
    bool act(const MemSample& s, const Decision& d);                   // true: the action happened
    void check_trigger();  // start/reload: can the trigger be opened for writing?
    bool take_instance_lock();  // false: another instance holds it
    void arm_timer(Duration d);
    void handle_signals();
    void update_status(Duration now, bool force);
    std::string_view status_line();
};

Duration monotonic_now();
uint64_t realtime_usec();

}  // namespace oomguard
