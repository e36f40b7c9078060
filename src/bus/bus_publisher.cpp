#include "bus/bus_publisher.hpp"

#include <poll.h>

#include "bus/announced.hpp"
#include "config/config.hpp"

namespace oomguard {

BusPublisher::BusPublisher(Host& host, BusChannel& channel) : host_(host), ch_(channel) {
    // Room for the usual traffic, so that steady publications never grow these.
    events_.reserve(16);
    results_.reserve(4);
    requests_.reserve(16);
    logs_.reserve(16);
}

void BusPublisher::set_heaviest_source(HeaviestSource* source) {
    heaviest_ = source;
    heaviest_read_ = false;
    rich_dirty_ = true;
}

void BusPublisher::refresh_ranking() {
    if (!heaviest_) return;
    const uint64_t g = heaviest_->generation();
    if (heaviest_read_ && g == heaviest_generation_) return;
    // A new ranking (the cgroup code's background refresh ran): copy it once.
    heaviest_read_ = true;
    heaviest_generation_ = g;
    rows_ =
        std::make_shared<const std::vector<HeaviestRow>>(heaviest_->last_ranking(kPublishedRows));
    rich_dirty_ = true;
}

void BusPublisher::publish(bool only_if_changed) {
    std::unique_lock<std::mutex> lock(ch_.mutex, std::try_to_lock);
    if (!lock.owns_lock()) {
        // The bus thread is copying the last one: keep this pending, never wait.
        if (!pending_) ++deferred_;
        pending_ = true;
        return;
    }
    const DaemonState& state = host_.state();
    if (only_if_changed) {
        // An idle node: every sample moves only the sample counters, which go
        // through the channel's atomics. Copying the whole state into the
        // snapshot at every wakeup was about a fifth of an idle wakeup's CPU
        // (issue 17). Compared with the channel's snapshot itself: this side
        // keeps no copy of the state (the bus thread's is the one it serves).
        ch_.snapshot.state.samples_total = state.samples_total;
        ch_.snapshot.state.sample_errors_total = state.sample_errors_total;
        if (ch_.snapshot.state == state) return;
    }
    // A change the bus thread does not announce (swap, a counter) is copied but
    // must not wake it (a wakeup and a context switch each time).
    // A new ranking alone (every 10 s) is served from the snapshot on the next
    // call; a trigger's target comes with a changed TriggerCount.
    const bool wake = ch_.version == 0 || !events_.empty() || !results_.empty() ||
                      announced_differ(ch_.snapshot.state, state);  // bus/announced.hpp
    ch_.snapshot.state = state;
    if (rich_dirty_) {
        ch_.snapshot.last_trigger_target = target_;
        ch_.snapshot.heaviest_available = heaviest_ != nullptr;
        ch_.snapshot.heaviest = rows_;
        ch_.snapshot.config = config_;
        rich_dirty_ = false;
    }
    // A bus thread stuck in sd-bus takes nothing: keep the newest signals only.
    for (auto& e : events_) {
        if (ch_.events.size() >= kMaxQueuedEvents) {
            ch_.events.erase(ch_.events.begin());
        }
        ch_.events.push_back(std::move(e));
    }
    events_.clear();
    for (auto& r : results_) ch_.results.push_back(std::move(r));
    results_.clear();
    ++ch_.version;
    lock.unlock();
    pending_ = false;
    if (wake) ch_.to_bus.wake();
}

void BusPublisher::on_warning(const DaemonState& s) {
    BusEvent e;
    e.kind = BusEvent::Kind::Warning;
    e.available = s.sample.mem_available;
    e.value = s.levels.warn;
    events_.push_back(std::move(e));
    publish();
}

void BusPublisher::on_trigger(const DaemonState& s, const TriggerReport& t) {
    if (t.ok()) {
        // What the trigger named, carried by the report; held here until the
        // channel takes it.
        target_ = t.target;
        rich_dirty_ = true;
        BusEvent e;
        e.kind = BusEvent::Kind::Triggered;
        e.available = s.sample.mem_available;
        e.target = target_.value_or(HeaviestRow{});
        // What was done (a kill-cgroup that fell back wrote sysrq), not the mode.
        e.action = t.kind;
        events_.push_back(std::move(e));
    }
    publish();
}

void BusPublisher::on_recovered(const DaemonState& s, Duration episode) {
    BusEvent e;
    e.kind = BusEvent::Kind::Recovered;
    e.available = s.sample.mem_available;
    e.value = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(episode).count());
    events_.push_back(std::move(e));
    publish();
}

void BusPublisher::on_state(const DaemonState& s) {
    refresh_ranking();
    ch_.samples_total.store(s.samples_total, std::memory_order_relaxed);
    ch_.sample_errors_total.store(s.sample_errors_total, std::memory_order_relaxed);
    // Nothing queued here: publish only a state that changed.
    publish(!pending_ && !rich_dirty_ && events_.empty() && results_.empty() && ch_.version != 0);
}

void BusPublisher::on_config(const DaemonState&, const Config& c) {
    config_ = std::make_shared<const Config>(c);
    rich_dirty_ = true;
    refresh_ranking();
    publish();
}

void BusPublisher::on_oom_kill(const DaemonState&, const OomKill& kill) {
    if (kill.pid < 0) return;
    BusEvent e;
    e.kind = BusEvent::Kind::Victim;
    e.victim = kill;
    events_.push_back(std::move(e));
    publish();
}

LoopSource::Spec BusPublisher::poll_spec() {
    Spec s;
    s.fd = ch_.to_daemon.fd();
    s.events = POLLIN;
    s.timeout_ns = pending_ || fetch_pending_ ? 1'000'000 : -1;
    return s;
}

void BusPublisher::dispatch(short revents) {
    if (revents & POLLIN) ch_.to_daemon.drain();
    {
        std::unique_lock<std::mutex> lock(ch_.mutex, std::try_to_lock);
        if (!lock.owns_lock()) {
            // Look again in 1 ms. Its own flag: a publication meanwhile clears
            // pending_, and the requests would wait for the bus thread's next wake.
            fetch_pending_ = true;
            return;
        }
        fetch_pending_ = false;
        requests_.swap(ch_.requests);
        logs_.swap(ch_.logs);
    }
    for (const BusLogEntry& l : logs_) host_.log().log(l.event, l.priority, l.message, l.fields);
    logs_.clear();
    if (!requests_.empty()) {
        perform(requests_);
        requests_.clear();
    }
    publish();
}

void BusPublisher::perform(const std::vector<Request>& requests) {
    // At loop level, like SIGHUP: reload() may run a sample and trigger, which
    // is safe here and was not inside a bus callback. Reloads queued together
    // are one reload (as a storm of SIGHUPs is), answered to each caller.
    std::optional<Status> reloaded;
    for (const Request& r : requests) {
        switch (r.kind) {
            case RequestKind::Reload:
                if (!reloaded) reloaded = host_.reload();
                results_.push_back({r.id, reloaded->ok()
                                              ? std::nullopt
                                              : std::optional<Error>(reloaded->error())});
                break;
        }
    }
}

}  // namespace oomguard
