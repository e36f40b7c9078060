#include "daemon.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "oomguard_build_config.h"

namespace oomguard {

Duration monotonic_now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

uint64_t realtime_usec() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000ull + static_cast<uint64_t>(ts.tv_nsec) / 1000ull;
}

namespace {

std::string u64(uint64_t v) { return std::to_string(v); }

// PSI wakes the loop when tasks stall on memory for 20ms within 500ms: the
// shortest window older kernels accept.
constexpr auto kPsiStall = std::chrono::milliseconds(20);
constexpr auto kPsiWindow = std::chrono::milliseconds(500);
constexpr auto kPsiStallUnpriv = std::chrono::milliseconds(50);
constexpr auto kPsiWindowUnpriv = std::chrono::seconds(2);

// last_error prefixes, so that a recovery clears only its own error.
constexpr std::string_view kTriggerFailed = "trigger failed: ";
constexpr std::string_view kSampleFailed = "cannot read MemAvailable: ";
constexpr std::string_view kTriggerUnusable = "trigger path unusable: ";

// Levels the node cannot have (issue 10, defect 4), against the MemTotal of the
// meminfo just opened: "" when they fit, else every error, joined.
std::string levels_against_mem_total(MeminfoReader& meminfo, const Config& c,
                                     const std::string& path) {
    MemSample s;
    if (!meminfo.sample(s)) return "";  // open() has just parsed it; a failure is logged by tick()
    std::string out;
    for (const auto& e : check_against_mem_total(c, s.mem_total))
        out += (out.empty() ? "" : "; ") + e.to_string(path);
    return out;
}

}  // namespace

Daemon::Daemon(DaemonOptions opts) : opts_(std::move(opts)), journal_(opts_.log_target) {}

Daemon::~Daemon() {
    if (signal_fd_ >= 0) ::close(signal_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

Config Daemon::apply_overrides(Config c) const {
    if (opts_.proc_root) c.paths.proc = *opts_.proc_root;
    if (opts_.cgroup_root) c.paths.cgroup = *opts_.cgroup_root;
    return c;
}

bool Daemon::open_sensors(const Config& c, std::string& error) {
    if (auto st = meminfo_.open(c.paths.proc); !st) {
        error = st.error().message;
        return false;
    }
    psi_.close();
    if (c.poll.psi) {
        Status st = psi_.open(c.paths.proc, kPsiStall, kPsiWindow);
        // Without CAP_SYS_RESOURCE the kernel only accepts windows in multiples of 2s.
        if (!st && st.error().code == EINVAL) st = psi_.open(c.paths.proc, kPsiStallUnpriv, kPsiWindowUnpriv);
        if (!st)
            journal_.log(Event::Info, LOG_INFO,
                         "PSI trigger unavailable, polling only: " + st.error().message);
    }
    return true;
}

bool Daemon::init() {
    ConfigLoad load = load_config(opts_.config_path, {opts_.allow_insecure_config});
    if (!load.config) {
        for (const auto& e : load.errors)
            journal_.log(Event::ReloadFailed, LOG_ERR, "config error: " + e.to_string(opts_.config_path),
                         {{"OOMGUARD_CONFIG_ERROR", e.to_string(opts_.config_path)}});
        return false;
    }
    Config c = apply_overrides(*load.config);
    std::string err;
    if (!open_sensors(c, err)) {
        journal_.log(Event::SensorError, LOG_ERR, "cannot start: " + err);
        return false;
    }
    if (err = levels_against_mem_total(meminfo_, c, opts_.config_path); !err.empty()) {
        journal_.log(Event::ReloadFailed, LOG_ERR, "config error: " + err,
                     {{"OOMGUARD_CONFIG_ERROR", err}});
        return false;
    }
    config_ = std::move(c);
    trigger_ = SysrqTrigger(config_.action.sysrq_trigger);
    policy_ = std::make_unique<Policy>(PolicySettings::from(config_));
    state_.config_path = opts_.config_path;
    state_.mode = config_.action.mode;
    state_.dry_run = opts_.dry_run || config_.action.mode == ActionMode::DryRun;
    if (!take_instance_lock()) return false;

    if (opts_.mlock) {
        // Keep the daemon resident under the very pressure it watches for.
        int flags = MCL_CURRENT | MCL_FUTURE;
#ifdef MCL_ONFAULT
        if (mlockall(flags | MCL_ONFAULT) != 0 && mlockall(flags) != 0)
#else
        if (mlockall(flags) != 0)
#endif
            journal_.log(Event::Info, LOG_WARNING,
                         std::string("mlockall failed, the daemon may be paged out: ") + std::strerror(errno));
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    // A log or trigger FIFO whose reader went away must fail a write with EPIPE,
    // not kill the daemon at the moment it acts.
    ::signal(SIGPIPE, SIG_IGN);
    signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) {
        journal_.log(Event::SensorError, LOG_ERR, std::string("signalfd: ") + std::strerror(errno));
        return false;
    }
    return true;
}

void Daemon::arm_timer(Duration d) {
    // The loop sleeps in ppoll() until then: no timerfd to read and re-arm, two
    // syscalls fewer per sample (issue 17).
    next_tick_ = monotonic_now() + std::max<Duration>(d, Duration{0});
}

std::string_view Daemon::status_line() {
    char avail[32], thr[32];
    format_bytes(state_.sample.mem_available, avail, sizeof avail);
    format_bytes(state_.levels.min, thr, sizeof thr);
    int n = std::snprintf(status_buf_, sizeof status_buf_, "MemAvailable %s / threshold %s · %llu trigger%s%s%s%s",
                          avail, thr, static_cast<unsigned long long>(state_.triggers_total),
                          state_.triggers_total == 1 ? "" : "s",
                          state_.state == MemState::Ok ? "" : state_.state == MemState::Warning ? " · WARNING" : " · CRITICAL",
                          state_.dry_run ? " · dry-run" : "",
                          state_.last_error.empty() ? "" : " · error (see journal)");
    if (n < 0) n = 0;
    return std::string_view(status_buf_, std::min<size_t>(static_cast<size_t>(n), sizeof status_buf_ - 1));
}

void Daemon::update_status(Duration now, bool force) {
    if (!force && now - last_status_ < std::chrono::seconds(1)) return;
    last_status_ = now;
    // sd_notify() costs a socket, a sendmsg and a close; when idle it doubled
    // the daemon's CPU time. Send only what changed, and format the line only
    // when what it shows changed (the formatting was a good part of an idle
    // wakeup, issue 17).
    const StatusInputs in{state_.sample.mem_available,
                          state_.levels.min,
                          state_.triggers_total,
                          state_.state,
                          state_.dry_run,
                          state_.last_error.empty()};
    if (force || !(in == status_inputs_)) {
        status_inputs_ = in;
        const std::string_view line = status_line();
        if (force || line != std::string_view(sent_status_, sent_status_len_)) {
            notifier_.status(line);
            sent_status_len_ = line.copy(sent_status_, sizeof sent_status_);
        }
    }
    if (journal_.to_terminal() && now - last_terminal_status_ >= std::chrono::seconds(5)) {
        // In the foreground on a terminal (the README demo), show the live numbers.
        last_terminal_status_ = now;
        journal_.log(Event::Info, LOG_INFO, status_line());
    }
    for (auto* s : sinks_) s->on_state(state_);
}

void Daemon::tick() {
    const Duration now = monotonic_now();
    MemSample s;
    if (!meminfo_.sample(s)) {
        ++state_.sample_errors_total;
        if (!sample_failing_) {
            // Log the first failure of a run of them; keep the last good state.
            sample_failing_ = true;
            state_.last_error = std::string(kSampleFailed) + meminfo_.last_error().message;
            journal_.log(Event::SensorError, LOG_ERR, state_.last_error,
                         {{"OOMGUARD_ERROR", meminfo_.last_error().message}});
        }
        // The loop is alive: the watchdog ping and STATUS go on (with the error).
        finish_tick(now,
                    std::min<Duration>(config_.poll.max_interval, std::chrono::milliseconds(100)),
                    false);
        return;
    }
    const bool recovered = sample_failing_;
    if (recovered) {
        sample_failing_ = false;
        if (state_.last_error.starts_with(kSampleFailed)) state_.last_error.clear();
        journal_.log(Event::Info, LOG_NOTICE, "reading MemAvailable works again");
    }
    ++state_.samples_total;
    Decision d = policy_->decide(s, now);
    const bool state_changed = d.state != state_.state;
    state_.sample = s;
    state_.levels = d.levels;
    state_.state = d.state;

    if (d.trigger) {
        // Only a success starts the repeat_after clock; a failure is retried soon.
        const bool ok = act(s, d);
        d.next_poll = std::min(d.next_poll, policy_->action_result(ok, now));
    }
    if (d.warn) {
        ++state_.warnings_total;
        journal_.log(Event::Warning, LOG_WARNING,
                     "MemAvailable " + format_bytes(s.mem_available) + " is below the warning level " +
                         format_bytes(d.levels.warn) + " (trigger at " + format_bytes(d.levels.min) + ")",
                     {{"OOMGUARD_MEM_AVAILABLE_BYTES", u64(s.mem_available)},
                      {"OOMGUARD_WARN_BYTES", u64(d.levels.warn)},
                      {"OOMGUARD_THRESHOLD_BYTES", u64(d.levels.min)},
                      {"OOMGUARD_EPISODE", u64(d.episode)}});
        for (auto* k : sinks_) k->on_warning(state_);
    }
    if (d.episode_ended) {
        if (d.episode_had_trigger) {
            journal_.log(Event::Recovered, LOG_NOTICE,
                         // Not "recovered: ...": the stderr line already starts with the event name.
                         "MemAvailable " + format_bytes(s.mem_available) + " is back above " +
                             format_bytes(d.levels.recover) + "; the episode is over after " +
                             format_duration(d.episode_length),
                         {{"OOMGUARD_MEM_AVAILABLE_BYTES", u64(s.mem_available)},
                          {"OOMGUARD_RECOVER_BYTES", u64(d.levels.recover)},
                          {"OOMGUARD_EPISODE", u64(d.episode)},
                          {"OOMGUARD_EPISODE_USEC", u64(static_cast<uint64_t>(d.episode_length.count() / 1000))}});
            for (auto* k : sinks_) k->on_recovered(state_, d.episode_length);
        } else {
            journal_.log(Event::Info, LOG_INFO,
                         "MemAvailable " + format_bytes(s.mem_available) + " is back above " +
                             format_bytes(d.levels.recover) + "; warning episode over after " +
                             format_duration(d.episode_length));
        }
    }

    finish_tick(now, d.next_poll, state_changed || d.trigger || recovered);
}

void Daemon::finish_tick(Duration now, Duration next, bool force_status) {
    if (notifier_.watchdog_usec()) {
        // Never sleep past a quarter of the watchdog interval.
        Duration wd = std::chrono::microseconds(notifier_.watchdog_usec());
        if (now - last_watchdog_ >= wd / 4) {
            notifier_.watchdog();
            last_watchdog_ = now;
        }
        next = std::min(next, wd / 4);
    }
    arm_timer(next);
    update_status(now, force_status);
}

const char* to_string(TriggerOutcome o) {
    switch (o) {
        case TriggerOutcome::NotHandled:
            return "not-handled";
        case TriggerOutcome::Acted:
            return "acted";
        case TriggerOutcome::DryRun:
            return "dry-run";
        case TriggerOutcome::Failed:
            return "failed";
    }
    return "?";
}

bool Daemon::act(const MemSample& s, const Decision& d) {
    // Failed attempts are retried within the episode: count the episode once.
    if (d.episode != counted_episode_) {
        counted_episode_ = d.episode;
        ++state_.episodes_total;
    }
    // The action comes first. In sysrq mode nothing runs before the write (no
    // ranking, no allocation); kill-cgroup needs a ranking, bounded by scan_budget.
    // Logging waits too: sd_journal_send() blocks while journald does not read
    // its socket, which is just what a stalled journald does under pressure.
    ActionResult r;
    if (hook_ && config_.action.mode == ActionMode::KillCgroup)
        r = hook_->act(config_, state_.dry_run);
    const bool handled = r.outcome != TriggerOutcome::NotHandled;
    Status st = ok_status();
    if (!handled) {
        if (state_.dry_run) {
            r.outcome = TriggerOutcome::DryRun;
        } else {
            st = trigger_.fire();
            r.outcome = st ? TriggerOutcome::Acted : TriggerOutcome::Failed;
        }
        // kill-cgroup says why it fell back to sysrq.
        r.what += state_.dry_run ? "dry-run: would write 'f' to " + config_.action.sysrq_trigger
                                 : "writing 'f' to " + config_.action.sysrq_trigger;
    }
    const bool ok = r.outcome != TriggerOutcome::Failed;

    // Named after the action, from the ranking the cgroup code already holds.
    std::string extra;
    std::vector<LogField> hook_fields;
    // A run of retried failures names it once, not every retry.
    if (hook_ && (ok || policy_->consecutive_failures() == 0)) hook_->describe(extra, hook_fields);

    std::string msg = "MemAvailable " + format_bytes(s.mem_available) + " < threshold " +
                      format_bytes(d.levels.min) + (d.repeat ? " (still, repeat)" : "") + ": ";
    std::vector<LogField> fields = {
        {"OOMGUARD_MEM_AVAILABLE_BYTES", u64(s.mem_available)},
        {"OOMGUARD_MEM_TOTAL_BYTES", u64(s.mem_total)},
        {"OOMGUARD_THRESHOLD_BYTES", u64(d.levels.min)},
        {"OOMGUARD_EPISODE", u64(d.episode)},
        {"OOMGUARD_REPEAT", d.repeat ? "1" : "0"},
        {"OOMGUARD_DRY_RUN", state_.dry_run ? "1" : "0"},
    };
    for (auto& f : hook_fields) fields.push_back(std::move(f));
    // What was done, not the mode: a dry-run did nothing, a fallback wrote sysrq.
    const char* kind = state_.dry_run ? "dry-run" : handled ? "kill-cgroup" : "sysrq";
    fields.push_back({"OOMGUARD_ACTION", kind});
    fields.push_back({"OOMGUARD_MODE", to_string(config_.action.mode)});
    fields.push_back({"OOMGUARD_OUTCOME", to_string(r.outcome)});

    state_.last_outcome = r.outcome;
    state_.last_action_kind = kind;
    if (ok) {
        journal_.log(Event::Trigger, LOG_WARNING, msg + r.what + extra, fields);
        ++state_.triggers_total;
        state_.last_trigger_realtime_usec = realtime_usec();
        state_.last_action = std::move(r.what);
        if (state_.last_error.starts_with(kTriggerFailed) ||
            state_.last_error.starts_with(kTriggerUnusable))
            state_.last_error.clear();
    } else {
        // Nothing was done: a failure in every sink, retried soon by the policy.
        const std::string err = st ? r.what : st.error().message;
        ++state_.trigger_failures_total;
        state_.last_error = std::string(kTriggerFailed) + err;
        fields.push_back({"OOMGUARD_ERROR", err});
        if (!st) fields.push_back({"ERRNO", u64(static_cast<uint64_t>(st.error().code))});
        fields.push_back({"OOMGUARD_FAILURES", u64(policy_->consecutive_failures() + 1)});
        const std::string detail = st ? msg + r.what : err + " (" + msg + r.what + ")";
        journal_.log(Event::TriggerFailed, LOG_ERR, std::string(kTriggerFailed) + detail + extra,
                     fields);
        state_.last_action = err;
    }
    for (auto* k : sinks_) k->on_trigger(state_, ok);
    return ok;
}

bool Daemon::take_instance_lock() {
    // Two instances (host package and DaemonSet) would both act on one crossing.
    const std::string& path = config_.paths.lock;
    if (path.empty()) return true;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        // Not fatal: guarding the node matters more than the lock.
        const int err = errno;
        journal_.log(Event::Info, err == ENOENT ? LOG_NOTICE : LOG_WARNING,
                     "no instance lock: cannot open " + path + ": " + std::strerror(err) +
                         "; a second oomguard on this node would not be noticed",
                     {{"OOMGUARD_LOCK", path}, {"ERRNO", u64(static_cast<uint64_t>(err))}});
        return true;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
            char buf[32] = {};
            ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
            std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
            while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
            ::close(fd);
            journal_.log(Event::SensorError, LOG_ERR,
                         "cannot start: another oomguard instance (pid " +
                             (pid.empty() ? std::string("unknown") : pid) + ") holds the lock " +
                             path +
                             "; two instances would both act on the same crossing. Run one only "
                             "(the host package or the DaemonSet), or give a test instance its "
                             "own [paths] lock",
                         {{"OOMGUARD_LOCK", path}, {"OOMGUARD_LOCK_PID", pid}});
            return false;
        }
        journal_.log(Event::Info, LOG_WARNING,
                     "no instance lock: flock " + path + ": " + std::strerror(err),
                     {{"OOMGUARD_LOCK", path}, {"ERRNO", u64(static_cast<uint64_t>(err))}});
        ::close(fd);
        return true;
    }
    // The holder's pid, for the refusal of the next one (in our pid namespace).
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
        journal_.log(Event::Info, LOG_WARNING,
                     "instance lock " + path + " taken, but writing the pid failed: " +
                         std::strerror(errno));
    lock_fd_ = fd;
    return true;
}

void Daemon::check_trigger() {
    // Found at start or reload, not at the first crossing. Never written here.
    Status st = trigger_.probe();
    if (st) return;
    const Error& e = st.error();
    if (e.code == ENXIO) {
        // A FIFO whose reader comes later is a supported (test) setup.
        journal_.log(Event::Info, LOG_WARNING,
                     "the trigger " + trigger_.path() +
                         " is a FIFO with no reader yet: a trigger fails until one opens it",
                     {{"OOMGUARD_TRIGGER", trigger_.path()}, {"ERRNO", u64(ENXIO)}});
        return;
    }
    state_.last_error = std::string(kTriggerUnusable) + e.message;
    journal_.log(Event::SensorError, LOG_WARNING,
                 "the trigger " + trigger_.path() + " cannot be opened for writing (" +
                     e.message + "): every trigger will fail until this is fixed" +
                     (state_.dry_run ? " (dry-run does not write it)" : ""),
                 {{"OOMGUARD_TRIGGER", trigger_.path()},
                  {"OOMGUARD_ERROR", e.message},
                  {"ERRNO", u64(static_cast<uint64_t>(e.code))}});
}

void Daemon::record_oom_kill(const OomKillInfo& kill) {
    ++state_.oom_kills_total;
    if (kill.memcg) ++state_.kernel_oom_kills_total;
    state_.last_oom_kill = kill;
    for (auto* k : sinks_) k->on_oom_kill(state_);
}

void Daemon::record_oom_request_ignored() { ++state_.oom_requests_ignored_total; }

bool Daemon::reload() {
    notifier_.reloading();
    ConfigLoad load = load_config(opts_.config_path, {opts_.allow_insecure_config});
    std::string err;
    if (load.config) {
        Config c = apply_overrides(*load.config);
        if (open_sensors(c, err) &&
            (err = levels_against_mem_total(meminfo_, c, opts_.config_path)).empty()) {
            config_ = std::move(c);
            trigger_ = SysrqTrigger(config_.action.sysrq_trigger);
            policy_->reconfigure(PolicySettings::from(config_));
            state_.mode = config_.action.mode;
            state_.dry_run = opts_.dry_run || config_.action.mode == ActionMode::DryRun;
            // A dry-run did not use up the real action's turn: acting for real
            // now, the next sample below the threshold acts at once.
            if (!state_.dry_run && state_.last_outcome == TriggerOutcome::DryRun)
                policy_->make_due();
            state_.last_error.clear();
            check_trigger();
            journal_.log(Event::Reload, LOG_NOTICE,
                         "reloaded " + opts_.config_path + ": threshold " +
                             config_.memory.min_available.to_string() + ", mode " + to_string(config_.action.mode) +
                             (state_.dry_run ? " (dry-run)" : ""),
                         {{"OOMGUARD_CONFIG", opts_.config_path}});
            for (auto* k : sinks_) k->on_config(state_, config_);
            tick();
            notifier_.ready(status_line());
            return true;
        }
        // The new paths do not work: reopen the old ones.
        std::string ignored;
        open_sensors(config_, ignored);
    } else {
        for (size_t i = 0; i < load.errors.size(); ++i)
            err += (i ? "; " : "") + load.errors[i].to_string(opts_.config_path);
    }
    state_.last_error = "reload failed: " + err;
    journal_.log(Event::ReloadFailed, LOG_ERR, "reload failed, keeping the previous config: " + err,
                 {{"OOMGUARD_CONFIG", opts_.config_path}, {"OOMGUARD_CONFIG_ERROR", err}});
    notifier_.ready(std::string(status_line()) + " · reload failed: " + err);
    return false;
}

void Daemon::handle_signals() {
    signalfd_siginfo si;
    bool hup = false;
    while (::read(signal_fd_, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP) hup = true;  // a storm of HUPs is one reload
        else stop_ = true;
    }
    if (hup && !stop_) reload();
}

int Daemon::run() {
    last_terminal_status_ = monotonic_now();
    // The start entry and the sinks' first config come before the first decision,
    // which may already trigger.
    if (MemSample first; meminfo_.sample(first)) {
        state_.sample = first;
        state_.levels = policy_->levels(first.mem_total);
    }
    journal_.log(Event::Start, LOG_NOTICE,
                 std::string("oomguard ") + OOMGUARD_VERSION + " monitoring " + meminfo_.path() +
                     ": MemAvailable " + format_bytes(state_.sample.mem_available) + ", threshold " +
                     format_bytes(state_.levels.min) + " (" + config_.memory.min_available.to_string() + ")" +
                     ", action " + (state_.dry_run ? "dry-run" : to_string(config_.action.mode)) + " -> " +
                     config_.action.sysrq_trigger + (psi_.fd() >= 0 ? ", PSI trigger on" : ", polling only"),
                 {{"OOMGUARD_MEM_AVAILABLE_BYTES", u64(state_.sample.mem_available)},
                  {"OOMGUARD_MEM_TOTAL_BYTES", u64(state_.sample.mem_total)},
                  {"OOMGUARD_THRESHOLD_BYTES", u64(state_.levels.min)},
                  {"OOMGUARD_MODE", to_string(config_.action.mode)},
                  {"OOMGUARD_DRY_RUN", state_.dry_run ? "1" : "0"},
                  {"OOMGUARD_CONFIG", opts_.config_path},
                  {"OOMGUARD_VERSION", OOMGUARD_VERSION}});
    check_trigger();
    for (auto* k : sinks_) k->on_config(state_, config_);
    tick();
    notifier_.ready(status_line());
    if (notifier_.watchdog_usec()) {
        notifier_.watchdog();
        last_watchdog_ = monotonic_now();
    }

    std::vector<pollfd> fds;
    std::vector<LoopSource*> polled;
    std::vector<int64_t> source_timeouts;
    while (!stop_) {
        fds.clear();
        polled.clear();
        fds.push_back({signal_fd_, POLLIN, 0});
        const int psi_fd = psi_.fd();
        if (psi_fd >= 0) fds.push_back({psi_fd, POLLPRI, 0});
        const size_t first_source = fds.size();
        source_timeouts.clear();
        for (auto* src : sources_) {
            LoopSource::Spec sp = src->poll_spec();
            fds.push_back({sp.fd, sp.events, 0});
            polled.push_back(src);
            source_timeouts.push_back(sp.timeout_ns);
        }
        const Duration poll_start = monotonic_now();
        // Slow periodic work that the next sample follows closely waits for it.
        const int64_t timeout_ns = wake_.timeout_ns(
            poll_start.count(), (next_tick_ - poll_start).count(), source_timeouts);
        const timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
                          static_cast<long>(timeout_ns % 1'000'000'000)};
        int n = ::ppoll(fds.data(), fds.size(), &ts, nullptr);
        if (n < 0) {
            if (errno == EINTR) continue;
            journal_.log(Event::SensorError, LOG_ERR, std::string("poll: ") + std::strerror(errno));
            return 1;
        }
        const Duration woke = monotonic_now();
        bool sample_now = woke >= next_tick_;
        if (psi_fd >= 0 && (fds[1].revents & (POLLPRI | POLLERR))) {
            if (fds[1].revents & POLLERR) {
                journal_.log(Event::Info, LOG_WARNING, "PSI trigger went away; polling only");
                psi_.close();
            }
            sample_now = true;
        }
        if (sample_now) tick();
        if (fds[0].revents & POLLIN) handle_signals();
        // A source whose own timeout passed is dispatched even when other fds were
        // ready too (near the threshold a sample is due every millisecond).
        const int64_t waited_ns = (woke - poll_start).count();
        for (size_t i = 0; i < polled.size(); ++i) {
            short re = fds[first_source + i].revents;
            const bool expired = source_timeouts[i] >= 0 && waited_ns >= source_timeouts[i];
            if (re || expired) polled[i]->dispatch(re);
        }
    }
    notifier_.stopping();
    journal_.log(Event::Stop, LOG_NOTICE,
                 "stopping after " + u64(state_.triggers_total) + " trigger(s)",
                 {{"OOMGUARD_TRIGGERS", u64(state_.triggers_total)}});
    return 0;
}

}  // namespace oomguard
