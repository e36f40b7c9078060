// The daemon: one poll() loop over a timerfd, a signalfd, the PSI trigger fd and
// any extra sources (the D-Bus connection, /dev/kmsg). No threads on the hot path.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actions/trigger.hpp"
#include "config/config.hpp"
#include "policy/policy.hpp"
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
    uint64_t kernel_oom_kills_total = 0;
    uint64_t last_trigger_realtime_usec = 0;  // 0: never
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
    virtual void on_trigger(const DaemonState&, bool /*ok*/) {}
    virtual void on_recovered(const DaemonState&, Duration /*episode*/) {}
    virtual void on_state(const DaemonState&) {}  // at most ~1/s, and on state changes
    virtual void on_config(const DaemonState&, const Config&) {}
};

// Extra work around the trigger: naming the heaviest cgroup before it, the
// kill-cgroup action instead of sysrq. Installed by the cgroup code.
class TriggerHook {
public:
    virtual ~TriggerHook() = default;
    // Adds journal fields and message text about the heaviest cgroup. Must be bounded in time.
    virtual void describe(std::string& /*message*/, std::vector<LogField>& /*fields*/) {}
    // Returns true when it handled the action itself (kill-cgroup); false: write sysrq.
    virtual bool act(const Config&, bool /*dry_run*/, std::string& /*what*/) { return false; }
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

    int timer_fd_ = -1;
    int signal_fd_ = -1;
    bool stop_ = false;
    bool sample_failing_ = false;
    Duration last_status_{0};
    Duration last_watchdog_{0};
    MemState last_state_ = MemState::Ok;
    char status_buf_[256];
    char sent_status_[256];  // the last STATUS= we sent
    size_t sent_status_len_ = 0;

    Config apply_overrides(Config c) const;
    bool open_sensors(const Config& c, std::string& error);
    void tick();
    void act(const MemSample& s, const Decision& d);
    void arm_timer(Duration d);
    void handle_signals();
    void update_status(Duration now, bool force);
    std::string_view status_line();
};

Duration monotonic_now();
uint64_t realtime_usec();

}  // namespace oomguard
