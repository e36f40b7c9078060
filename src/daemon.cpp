#include "daemon.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "app/instance_lock.hpp"
#include "app/policy_settings.hpp"
#include "core/clock.hpp"
#include "oomguard_build_config.h"
#include "service/oom_daemons.hpp"

namespace oomguard {

namespace {

std::string u64(uint64_t v) { return std::to_string(v); }

// PSI wakes the loop when tasks stall on memory for 20ms within 500ms: the
// shortest window older kernels accept.
constexpr auto kPsiStall = std::chrono::milliseconds(20);
constexpr auto kPsiWindow = std::chrono::milliseconds(500);
constexpr auto kPsiStallUnpriv = std::chrono::milliseconds(50);
constexpr auto kPsiWindowUnpriv = std::chrono::seconds(2);

// last_error prefixes, so that a recovery clears only its own error.
constexpr std::string_view kSampleFailed = "cannot read MemAvailable: ";

// Levels the node cannot have (issue 10, defect 4), against the MemTotal of the
// meminfo just opened: "" when they fit, else every error, joined.
Status levels_against_mem_total(MeminfoReader& meminfo, const Config& c, const std::string& path) {
    MemSample s;
    if (!meminfo.sample(s)) return ok_status();  // open() has just parsed it; tick() logs a failure
    std::string out;
    for (const auto& e : check_against_mem_total(c, s.mem_total))
        out += (out.empty() ? "" : "; ") + e.to_string(path);
    if (out.empty()) return ok_status();
    return Error::logic(std::move(out));
}

// The main file and its drop-ins, in the order applied (journal field).
std::string config_files(const Config& c) {
    std::string out;
    for (const auto& f : c.sources) out += (out.empty() ? "" : " ") + f;
    return out;
}

}  // namespace

Daemon::Daemon(DaemonOptions opts, const Clock& clock)
    : opts_(std::move(opts)), clock_(clock), journal_(opts_.log_target, opts_.log_format) {}

Daemon::~Daemon() {
    if (signal_fd_ >= 0) ::close(signal_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

Config Daemon::apply_overrides(Config c) const {
    if (opts_.proc_root) c.paths.proc = *opts_.proc_root;
    if (opts_.cgroup_root) c.paths.cgroup = *opts_.cgroup_root;
    return c;
}

Status Daemon::open_sensors(const Config& c) {
    ++fd_generation_;  // the PSI fd may come back under the same number
    if (Status st = meminfo_.open(c.paths.proc); !st) return st;
    psi_.close();
    if (c.poll.psi) {
        Status st = psi_.open(c.paths.proc, kPsiStall, kPsiWindow);
        // Without CAP_SYS_RESOURCE the kernel only accepts windows in multiples of 2s.
        if (!st && st.error().code == EINVAL)
            st = psi_.open(c.paths.proc, kPsiStallUnpriv, kPsiWindowUnpriv);
        if (!st)
            journal_.log(Event::Info, LOG_INFO,
                         "PSI trigger unavailable, polling only: " + st.error().message);
    }
    return ok_status();
}

bool Daemon::init() {
    ConfigLoad load = load_config(opts_.config_path, {opts_.allow_insecure_config});
    if (!load.config) {
        for (const auto& e : load.errors)
            journal_.log(Event::ReloadFailed, LOG_ERR,
                         "config error: " + e.to_string(opts_.config_path),
                         {{"OOMGUARD_CONFIG_ERROR", e.to_string(opts_.config_path)}});
        return false;
    }
    Config c = apply_overrides(*load.config);
    if (Status st = open_sensors(c); !st) {
        journal_.log(Event::SensorError, LOG_ERR, "cannot start: " + st.error().message);
        return false;
    }
    if (Status lv = levels_against_mem_total(meminfo_, c, opts_.config_path); !lv) {
        journal_.log(Event::ReloadFailed, LOG_ERR, "config error: " + lv.error().message,
                     {{"OOMGUARD_CONFIG_ERROR", lv.error().message}});
        return false;
    }
    config_ = std::move(c);
    trigger_ = SysrqTrigger(config_.action.sysrq_trigger);
    policy_ = std::make_unique<Policy>(policy_settings(config_));
    state_.config_path = opts_.config_path;
    state_.mode = config_.action.mode;
    state_.dry_run = opts_.dry_run || config_.action.mode == ActionMode::DryRun;
    if (Result<int> lock = take_instance_lock(config_.paths.lock, journal_); !lock)
        return false;
    else
        lock_fd_ = *lock;

    if (opts_.mlock) {
        // Keep the daemon resident under the very pressure it watches for.
        int flags = MCL_CURRENT | MCL_FUTURE;
#ifdef MCL_ONFAULT
        if (mlockall(flags | MCL_ONFAULT) != 0 && mlockall(flags) != 0)
#else
        if (mlockall(flags) != 0)
#endif
            journal_.log(Event::Info, LOG_WARNING,
                         std::string("mlockall failed, the daemon may be paged out: ") +
                             std::strerror(errno));
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
    // The loop sleeps in its poller until then: no timerfd to read and re-arm, two
    // syscalls fewer per sample (issue 17).
    next_tick_ = clock_.now() + std::max<Duration>(d, Duration{0});
}

std::string_view Daemon::status_line() {
    char avail[32], thr[32];
    format_bytes(state_.sample.mem_available, avail, sizeof avail);
    format_bytes(state_.levels.min, thr, sizeof thr);
    int n = std::snprintf(status_buf_, sizeof status_buf_,
                          "MemAvailable %s / threshold %s · %llu trigger%s%s%s%s", avail, thr,
                          static_cast<unsigned long long>(state_.triggers_total),
                          state_.triggers_total == 1 ? "" : "s",
                          state_.state == MemState::Ok        ? ""
                          : state_.state == MemState::Warning ? " · WARNING"
                                                              : " · CRITICAL",
                          state_.dry_run ? " · dry-run" : "",
                          state_.last_error.empty() ? "" : " · error (see journal)");
    if (n < 0) n = 0;
    return std::string_view(status_buf_,
                            std::min<size_t>(static_cast<size_t>(n), sizeof status_buf_ - 1));
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
    const Duration now = clock_.now();
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
                     "MemAvailable " + format_bytes(s.mem_available) +
                         " is below the warning level " + format_bytes(d.levels.warn) +
                         " (trigger at " + format_bytes(d.levels.min) + ")",
                     {{"OOMGUARD_MEM_AVAILABLE_BYTES", u64(s.mem_available)},
                      {"OOMGUARD_WARN_BYTES", u64(d.levels.warn)},
                      {"OOMGUARD_THRESHOLD_BYTES", u64(d.levels.min)},
                      {"OOMGUARD_EPISODE", u64(d.episode)}});
        for (auto* k : sinks_) k->on_warning(state_);
    }
    if (d.episode_ended) {
        if (d.episode_had_trigger) {
            journal_.log(
                Event::Recovered, LOG_NOTICE,
                // Not "recovered: ...": the stderr line already starts with the event name.
                "MemAvailable " + format_bytes(s.mem_available) + " is back above " +
                    format_bytes(d.levels.recover) + "; the episode is over after " +
                    format_duration(d.episode_length),
                {{"OOMGUARD_MEM_AVAILABLE_BYTES", u64(s.mem_available)},
                 {"OOMGUARD_RECOVER_BYTES", u64(d.levels.recover)},
                 {"OOMGUARD_EPISODE", u64(d.episode)},
                 {"OOMGUARD_EPISODE_USEC",
                  u64(static_cast<uint64_t>(d.episode_length.count() / 1000))}});
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

Status Daemon::reload() {
    ++fd_generation_;  // sinks reopen their files in on_config (kmsg)
    notifier_.reloading();
    ConfigLoad load = load_config(opts_.config_path, {opts_.allow_insecure_config});
    std::string err;
    if (load.config) {
        Config c = apply_overrides(*load.config);
        Status opened = open_sensors(c);
        if (opened) opened = levels_against_mem_total(meminfo_, c, opts_.config_path);
        if (!opened) err = opened.error().message;
        if (opened) {
            config_ = std::move(c);
            trigger_ = SysrqTrigger(config_.action.sysrq_trigger);
            policy_->reconfigure(policy_settings(config_));
            state_.mode = config_.action.mode;
            state_.dry_run = opts_.dry_run || config_.action.mode == ActionMode::DryRun;
            // A dry-run did not use up the real action's turn: acting for real
            // now, the next sample below the threshold acts at once.
            if (!state_.dry_run && last_outcome_ == TriggerOutcome::DryRun) policy_->make_due();
            state_.last_error.clear();
            check_trigger();
            journal_.log(Event::Reload, LOG_NOTICE,
                         "reloaded " + opts_.config_path + ": threshold " +
                             config_.memory.min_available.to_string() + ", mode " +
                             to_string(config_.action.mode) + (state_.dry_run ? " (dry-run)" : ""),
                         {{"OOMGUARD_CONFIG", opts_.config_path},
                          {"OOMGUARD_CONFIG_FILES", config_files(config_)}});
            for (auto* k : sinks_) k->on_config(state_, config_);
            tick();
            notifier_.ready(status_line());
            return ok_status();
        }
        // The new paths do not work: reopen the old ones.
        (void)open_sensors(config_);
    } else {
        for (size_t i = 0; i < load.errors.size(); ++i)
            err += (i ? "; " : "") + load.errors[i].to_string(opts_.config_path);
    }
    state_.last_error = "reload failed: " + err;
    journal_.log(Event::ReloadFailed, LOG_ERR, "reload failed, keeping the previous config: " + err,
                 {{"OOMGUARD_CONFIG", opts_.config_path}, {"OOMGUARD_CONFIG_ERROR", err}});
    notifier_.ready(std::string(status_line()) + " · reload failed: " + err);
    return Error::logic(state_.last_error);
}

void Daemon::handle_signals() {
    signalfd_siginfo si;
    bool hup = false;
    while (::read(signal_fd_, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP)
            hup = true;  // a storm of HUPs is one reload
        else
            stop_ = true;
    }
    if (hup && !stop_) (void)reload();  // a failure is logged and in the state
}

int Daemon::run() {
    last_terminal_status_ = clock_.now();
    // The start entry and the sinks' first config come before the first decision,
    // which may already trigger.
    if (MemSample first; meminfo_.sample(first)) {
        state_.sample = first;
        state_.levels = policy_->levels(first.mem_total);
    }
    journal_.log(Event::Start, LOG_NOTICE,
                 std::string("oomguard ") + OOMGUARD_VERSION + " monitoring " + meminfo_.path() +
                     ": MemAvailable " + format_bytes(state_.sample.mem_available) +
                     ", threshold " + format_bytes(state_.levels.min) +
                     (config_.memory.min_available.is_percent
                          ? " (" + config_.memory.min_available.to_string() + " of MemTotal)"
                          : "") +
                     ", action " + (state_.dry_run ? "dry-run" : to_string(config_.action.mode)) +
                     " -> " + config_.action.sysrq_trigger +
                     (psi_.fd() >= 0 ? ", PSI trigger on" : ", polling only"),
                 {{"OOMGUARD_MEM_AVAILABLE_BYTES", u64(state_.sample.mem_available)},
                  {"OOMGUARD_MEM_TOTAL_BYTES", u64(state_.sample.mem_total)},
                  {"OOMGUARD_THRESHOLD_BYTES", u64(state_.levels.min)},
                  {"OOMGUARD_MODE", to_string(config_.action.mode)},
                  {"OOMGUARD_DRY_RUN", state_.dry_run ? "1" : "0"},
                  {"OOMGUARD_CONFIG", opts_.config_path},
                  {"OOMGUARD_CONFIG_FILES", config_files(config_)},
                  {"OOMGUARD_VERSION", OOMGUARD_VERSION}});
    check_trigger();
    if (const auto& e = notifier_.error())
        journal_.log(Event::Info, LOG_WARNING,
                     e->message + ": systemd will not hear READY=1 or the watchdog",
                     {{"ERRNO", u64(static_cast<uint64_t>(e->code))}});
    for (auto* k : sinks_) k->on_config(state_, config_);
    tick();
    notifier_.ready(status_line());
    // Said once at start: two guards may both act on one episode.
    warn_other_oom_daemons(journal_, config_.paths.proc);
    if (notifier_.watchdog_usec()) {
        notifier_.watchdog();
        last_watchdog_ = clock_.now();
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
        const Duration poll_start = clock_.now();
        // Slow periodic work that the next sample follows closely waits for it.
        const int64_t timeout_ns = wake_.timeout_ns(
            poll_start.count(), (next_tick_ - poll_start).count(), source_timeouts);
        int n = poller_.wait(fds, timeout_ns, fd_generation_);
        if (!poller_.using_epoll() && !said_ppoll_) {
            said_ppoll_ = true;  // works as before, at the cost of ppoll() per wakeup
            journal_.log(Event::Info, LOG_INFO,
                         "waiting in ppoll(), not epoll: " + poller_.fallback_reason());
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            journal_.log(Event::SensorError, LOG_ERR, std::string("poll: ") + std::strerror(errno));
            return 1;
        }
        const Duration woke = clock_.now();
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
