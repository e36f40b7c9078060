#include "bus/bus_service.hpp"

#include <poll.h>
#include <syslog.h>
#include <unistd.h>

#include "bus/dump.hpp"
#include "bus/manager_adaptor.hpp"
#include "bus/sdbus_compat.hpp"
#include "bus/system_bus_address.hpp"

namespace oomguard {

namespace {

// Requests handled per dispatch before the loop samples again.
constexpr int kMaxRequestsPerDispatch = 64;

const char* action_name(const DaemonState& s) { return s.dry_run ? "dry-run" : to_string(s.mode); }

}  // namespace

BusService::BusService(Daemon& daemon) : daemon_(daemon), address_(system_bus_address()) {}

BusService::~BusService() { close_link(); }

std::vector<HeaviestRow> BusService::heaviest(size_t max) {
    if (!heaviest_ || max == 0) return {};
    std::vector<HeaviestRow> rows = heaviest_->heaviest(max);
    if (rows.size() > max) rows.resize(max);
    return rows;
}

uint64_t BusService::kernel_oom_kills() const {
    return std::max(daemon_.state().kernel_oom_kills_total, victims_seen_);
}

std::string BusService::dump() {
    DumpInput in(daemon_.state(), daemon_.config());
    in.heaviest_available = heaviest_ != nullptr;
    in.heaviest = heaviest(10);
    in.last_trigger_target = last_target_;
    in.last_victim = last_victim_;
    in.kernel_oom_kills = kernel_oom_kills();
    in.bus =
        std::string(dbus::kBusName) + " on " + address_ +
        (registrations_ > 1 ? " (registered " + std::to_string(registrations_) + " times)" : "");
    return render_dump(in);
}

bool BusService::reload(std::string& error) {
    if (daemon_.reload()) return true;
    error = daemon_.state().last_error;
    return false;
}

// ---- connection lifecycle -------------------------------------------------
//
// Down --(backoff elapsed)--> Probing --(bus daemon answered)--> Naming
//   --(RequestName replied)--> Named. Any failure goes back to Down with
// backoff; losing a live connection retries after kBackoffMin.

namespace {

int64_t until(Duration deadline, Duration now) {
    return std::max<int64_t>(0, (deadline - now).count());
}

}  // namespace

LoopSource::Spec BusService::poll_spec() {
    const Duration now = monotonic_now();
    if (broken_) drop("sending failed", now);
    Spec spec;
    switch (link_) {
        case Link::Down:
            spec.timeout_ns = until(next_attempt_, now);
            return spec;
        case Link::Probing:
            spec.fd = probe_.fd();
            spec.events = POLLIN;
            spec.timeout_ns = until(deadline_, now);
            return spec;
        case Link::Naming:
        case Link::Named:
            break;
    }
    try {
        dbus::PollSpec p = dbus::poll_spec(*conn_);
        spec.fd = p.fd;
        spec.events = p.events;
        spec.timeout_ns = more_pending_ ? 0 : p.timeout_ns;
    } catch (const sdbus::Error& e) {
        drop(e.getMessage(), now);
        spec = Spec{};
        spec.timeout_ns = until(next_attempt_, now);
        return spec;
    }
    if (mem_pending_) {
        int64_t due = until(last_mem_announce_ + kMemAnnounceInterval, now);
        if (spec.timeout_ns < 0 || due < spec.timeout_ns) spec.timeout_ns = due;
    }
    return spec;
}

void BusService::dispatch(short revents) {
    const Duration now = monotonic_now();
    switch (link_) {
        case Link::Down:
            if (now >= next_attempt_) start_attempt(now);
            return;
        case Link::Probing: {
            std::string error;
            BusProbe::Step step =
                revents ? probe_.advance(revents, error) : BusProbe::Step::Pending;
            if (step == BusProbe::Step::Answered) {
                probe_.close();
                open_connection(now);
            } else if (step == BusProbe::Step::Failed) {
                attempt_failed(error, now);
            } else if (now >= deadline_) {
                attempt_failed(
                    "the bus daemon did not answer within " + format_duration(kProbeTimeout), now);
            }
            return;
        }
        case Link::Naming:
        case Link::Named:
            break;
    }
    more_pending_ = false;
    try {
        int n = 0;
        while (conn_->processPendingRequest()) {
            if (++n >= kMaxRequestsPerDispatch) {
                more_pending_ = true;
                break;
            }
            if (!name_error_.empty()) break;
        }
    } catch (const sdbus::Error& e) {
        drop(e.getMessage(), now);
        return;
    }
    if (!name_error_.empty()) {
        // Not from inside the reply callback: that runs within the connection.
        std::string why = std::move(name_error_);
        name_error_.clear();
        close_link();
        attempt_failed(why, now);
        return;
    }
    if (!more_pending_ && (revents & (POLLHUP | POLLERR | POLLNVAL))) {
        drop("the bus daemon hung up", now);
        return;
    }
    if (mem_pending_ && now - last_mem_announce_ >= kMemAnnounceInterval) announce(now);
}

void BusService::start_attempt(Duration now) {
    address_ = system_bus_address();
    if (auto path = unix_socket_path(address_)) {
        if (Status st = probe_.start(*path, ::geteuid()); !st) {
            attempt_failed(st.error().message, now);
            return;
        }
        link_ = Link::Probing;
        deadline_ = now + kProbeTimeout;
        return;
    }
    // An address form we cannot probe (abstract, tcp, several): connect directly.
    open_connection(now);
}

void BusService::open_connection(Duration now) {
    try {
        conn_ = dbus::open_system_bus();
        dbus::set_call_timeout(*conn_,
                               std::chrono::duration_cast<std::chrono::microseconds>(kCallTimeout));
        driver_ = dbus::bus_driver_proxy(*conn_);
        // Object first, then the name: whoever sees the name can call at once.
        adaptor_ = std::make_unique<ManagerAdaptor>(*conn_, *this);
        link_ = Link::Naming;
        dbus::request_name_async(
            *driver_, dbus::kBusName,
            [this](const std::string& error, uint32_t reply) { name_reply(error, reply); });
    } catch (const sdbus::Error& e) {
        close_link();
        attempt_failed(dbus::error_name(e) + ": " + e.getMessage(), now);
    }
}

void BusService::name_reply(const std::string& error, uint32_t reply) {
    if (!error.empty()) {
        name_error_ = "RequestName failed: " + error;
        return;
    }
    if (reply != 1 && reply != 4) {
        name_error_ = reply == 3 ? std::string(dbus::kBusName) +
                                       " is owned by another connection (another oomguard?)"
                                 : "RequestName answered " + std::to_string(reply);
        return;
    }
    const Duration now = monotonic_now();
    link_ = Link::Named;
    backoff_ = kBackoffMin;
    last_failure_.clear();
    // Clients re-read everything when the name appears; announce changes from here on.
    announced_ = current();
    last_mem_announce_ = now;
    mem_pending_ = false;
    ++registrations_;
    Journal& j = daemon_.journal();
    if (!ever_registered_) {
        j.log(Event::Info, LOG_INFO,
              std::string("D-Bus: ") + dbus::kBusName + " registered on " + address_,
              {{"OOMGUARD_DBUS_ADDRESS", address_}});
    } else {
        j.log(Event::Info, LOG_NOTICE,
              std::string("D-Bus: ") + dbus::kBusName + " registered again on " + address_ +
                  " after " + format_duration(now - down_since_),
              {{"OOMGUARD_DBUS_ADDRESS", address_}});
    }
    ever_registered_ = true;
}

void BusService::caller_uid(const std::string& sender,
                            std::function<void(const std::string&, uint32_t)> done) {
    if (!driver_) {
        done("not connected to the bus", 0);
        return;
    }
    dbus::caller_uid_async(*driver_, sender, std::move(done));
}

void BusService::attempt_failed(const std::string& why, Duration now) {
    close_link();
    if (why != last_failure_) {
        last_failure_ = why;
        daemon_.journal().log(Event::Info, LOG_WARNING,
                              std::string("D-Bus: cannot register ") + dbus::kBusName + " on " +
                                  address_ + ": " + why +
                                  "; monitoring continues, retrying in the background",
                              {{"OOMGUARD_DBUS_ADDRESS", address_}, {"OOMGUARD_ERROR", why}});
    }
    if (down_since_ == Duration{0}) down_since_ = now;
    next_attempt_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, kBackoffMax);
}

void BusService::close_link() {
    adaptor_.reset();
    driver_.reset();
    conn_.reset();
    probe_.close();
    link_ = Link::Down;
    broken_ = false;
    more_pending_ = false;
    mem_pending_ = false;
}

void BusService::drop(const std::string& why, Duration now) {
    close_link();
    down_since_ = now;
    last_failure_.clear();
    next_attempt_ = now + kBackoffMin;
    backoff_ = std::min(kBackoffMin * 2, kBackoffMax);
    daemon_.journal().log(Event::Info, LOG_WARNING,
                          "D-Bus: lost the connection to " + address_ + " (" + why +
                              "); monitoring continues, reconnecting",
                          {{"OOMGUARD_DBUS_ADDRESS", address_}, {"OOMGUARD_ERROR", why}});
}

// ---- signals and PropertiesChanged ----------------------------------------

template <typename F>
void BusService::emit(F&& f) {
    if (link_ != Link::Named || broken_) return;
    try {
        f(*adaptor_);
    } catch (const sdbus::Error&) {
        // The connection is gone or wedged; poll_spec() drops it and reconnects.
        broken_ = true;
    }
}

BusService::Announced BusService::current() const {
    const DaemonState& s = daemon_.state();
    Announced a;
    a.mem_available = s.sample.mem_available;
    a.mem_total = s.sample.mem_total;
    a.threshold = s.levels.min;
    a.warn = s.levels.warn;
    a.state = s.state;
    a.mode = s.mode;
    a.dry_run = s.dry_run;
    a.triggers = s.triggers_total;
    a.failures = s.trigger_failures_total;
    a.last_trigger = s.last_trigger_realtime_usec;
    a.oom_kills = kernel_oom_kills();
    a.victims = victims_seen_;
    if (last_target_) a.target = *last_target_;
    a.last_error = s.last_error;
    return a;
}

void BusService::announce(Duration now) {
    if (link_ != Link::Named || broken_) return;
    const Announced cur = current();
    Announced& a = announced_;
    std::vector<std::string> names;
    auto changed = [&names](bool differs, const char* name) {
        if (differs) names.emplace_back(name);
    };
    changed(cur.threshold != a.threshold, "Threshold");
    changed(cur.warn != a.warn, "WarnThreshold");
    changed(cur.state != a.state, "State");
    changed(cur.mode != a.mode, "Mode");
    changed(cur.dry_run != a.dry_run, "DryRun");
    changed(cur.triggers != a.triggers, "TriggerCount");
    changed(cur.failures != a.failures, "TriggerFailures");
    changed(cur.last_trigger != a.last_trigger, "LastTrigger");
    changed(!(cur.target == a.target), "LastTriggerTarget");
    changed(cur.oom_kills != a.oom_kills, "KernelOomKills");
    changed(cur.victims != a.victims, "LastVictim");
    changed(cur.last_error != a.last_error, "LastError");
    const bool mem_changed = cur.mem_available != a.mem_available || cur.mem_total != a.mem_total;
    const bool mem_due = now - last_mem_announce_ >= kMemAnnounceInterval;
    if (mem_changed && mem_due) {
        changed(cur.mem_available != a.mem_available, "MemAvailable");
        changed(cur.mem_total != a.mem_total, "MemTotal");
        last_mem_announce_ = now;
        mem_pending_ = false;
    } else if (mem_changed) {
        mem_pending_ = true;  // poll_spec() wakes the loop when it is due
    }
    if (names.empty()) return;
    // Keep the old memory values when they were held back.
    const uint64_t held_avail = a.mem_available, held_total = a.mem_total;
    a = cur;
    if (mem_changed && !mem_due) {
        a.mem_available = held_avail;
        a.mem_total = held_total;
    }
    emit([&](ManagerAdaptor& ad) { ad.emit_properties_changed(names); });
}

void BusService::on_warning(const DaemonState& s) {
    emit([&](ManagerAdaptor& ad) { ad.emitWarning(s.sample.mem_available, s.levels.warn); });
    announce(monotonic_now());
}

void BusService::on_oom_kill(const DaemonState& s) {
    const OomKillInfo& k = s.last_oom_kill;
    if (k.pid < 0) return;
    OomVictim v;
    v.pid = static_cast<uint32_t>(k.pid);
    v.name = k.task;
    v.cgroup = k.cgroup;
    v.namespace_ = k.pod_namespace;
    v.pod = k.pod_name.empty() ? k.pod_uid : k.pod_name;
    v.realtime_usec = k.realtime_usec;
    on_victim(v);
}

void BusService::on_trigger(const DaemonState& s, bool ok) {
    if (ok) {
        // What the trigger hook named; read now, while it is the current trigger's.
        last_target_ = heaviest_ ? heaviest_->last_trigger_target() : std::nullopt;
        HeaviestRow t = last_target_.value_or(HeaviestRow{});
        emit([&](ManagerAdaptor& ad) {
            ad.emitTriggered(s.sample.mem_available, t.cgroup, t.namespace_, t.pod, action_name(s));
        });
    }
    announce(monotonic_now());
}

void BusService::on_recovered(const DaemonState& s, Duration episode) {
    const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(episode).count();
    emit([&](ManagerAdaptor& ad) {
        ad.emitRecovered(s.sample.mem_available, static_cast<uint64_t>(usec));
    });
    announce(monotonic_now());
}

void BusService::on_state(const DaemonState&) { announce(monotonic_now()); }

void BusService::on_config(const DaemonState&, const Config&) { announce(monotonic_now()); }

void BusService::on_victim(const OomVictim& victim) {
    OomVictim v = victim;
    if (v.realtime_usec == 0) v.realtime_usec = realtime_usec();
    ++victims_seen_;
    last_victim_ = v;
    emit([&](ManagerAdaptor& ad) { ad.emitVictim(v.pid, v.name, v.cgroup, v.namespace_, v.pod); });
    announce(monotonic_now());
}

}  // namespace oomguard
