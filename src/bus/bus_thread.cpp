#include "bus/bus_thread.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "bus/dump.hpp"
#include "bus/manager_adaptor.hpp"
#include "bus/sdbus_compat.hpp"
#include "bus/system_bus_address.hpp"

namespace oomguard {

namespace {

int64_t until(Duration deadline, Duration now) {
    return std::max<int64_t>(0, (deadline - now).count());
}

const Config& default_config() {
    static const Config c;
    return c;
}

}  // namespace

BusThread::BusThread(BusChannel& channel, const Clock& clock)
    : ch_(channel), clock_(clock), address_(system_bus_address()) {}

BusThread::~BusThread() {
    if (thread_.joinable() && !stop(kStopWait)) {
        // The detached thread still uses *this and the channel: leave without
        // destructors rather than let it run on freed memory.
        std::fflush(nullptr);
        ::_exit(0);
    }
}

void BusThread::start() {
    // SIGTERM/SIGINT/SIGHUP stay blocked here: the daemon thread's signalfd
    // receives them (the mask is inherited; set it explicitly all the same).
    sigset_t mask, old;
    sigemptyset(&mask);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&mask, s);
    pthread_sigmask(SIG_BLOCK, &mask, &old);
    thread_ = std::thread([this] {
        run();
        std::lock_guard<std::mutex> g(done_mutex_);
        done_ = true;
        done_cv_.notify_all();
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

bool BusThread::stop(Duration wait) {
    if (!thread_.joinable()) return true;
    stop_ = true;
    ch_.to_bus.wake();
    bool finished;
    {
        std::unique_lock<std::mutex> lock(done_mutex_);
        finished = done_cv_.wait_for(lock, wait, [this] { return done_; });
    }
    if (finished) {
        thread_.join();
        return true;
    }
    thread_.detach();
    return false;
}

void BusThread::log(Event e, int priority, std::string message, std::vector<LogField> fields) {
    {
        // Only this thread waits on the channel; the daemon thread holds it briefly.
        std::lock_guard<std::mutex> g(ch_.mutex);
        ch_.logs.push_back({e, priority, std::move(message), std::move(fields)});
    }
    ch_.to_daemon.wake();
}

// ---- the thread's loop ----------------------------------------------------

void BusThread::run() {
    while (!stop_) {
        Duration now = clock_.now();
        if (broken_) drop("sending failed", now);
        const Spec spec = link_spec(now);
        pollfd fds[2] = {{ch_.to_bus.fd(), POLLIN, 0}, {spec.fd, spec.events, 0}};
        const int timeout_ms =
            spec.timeout_ns < 0 ? -1 : static_cast<int>((spec.timeout_ns + 999'999) / 1'000'000);
        const int n = ::poll(fds, 2, timeout_ms);
        if (n < 0 && errno != EINTR) {
            log(Event::Info, LOG_ERR,
                std::string("D-Bus: poll failed, the D-Bus API stops: ") + std::strerror(errno));
            break;
        }
        if (stop_) break;
        if (fds[0].revents & POLLIN) ch_.to_bus.drain();
        // Also without a wake: the daemon does not wake this thread for counters
        // alone, and a method call must see the newest snapshot.
        take_from_daemon();
        now = clock_.now();
        link_dispatch(n > 0 ? fds[1].revents : 0, now);
        emit_events();
        answer_results();
        announce(clock_.now());
    }
    close_link();  // may block on a wedged bus (a flush); the daemon does not wait for it
}

void BusThread::take_from_daemon() {
    std::lock_guard<std::mutex> g(ch_.mutex);
    if (ch_.version != seen_version_) {
        seen_version_ = ch_.version;
        snap_ = ch_.snapshot;
    }
    snap_.state.samples_total = ch_.samples_total.load(std::memory_order_relaxed);
    snap_.state.sample_errors_total = ch_.sample_errors_total.load(std::memory_order_relaxed);
    for (auto& e : ch_.events) events_.push_back(std::move(e));
    ch_.events.clear();
    for (auto& r : ch_.results) results_.push_back(std::move(r));
    ch_.results.clear();
}

void BusThread::emit_events() {
    for (const BusEvent& e : events_) {
        switch (e.kind) {
            case BusEvent::Kind::Warning:
                emit([&](ManagerAdaptor& ad) { ad.emitWarning(e.available, e.value); });
                break;
            case BusEvent::Kind::Triggered:
                emit([&](ManagerAdaptor& ad) {
                    ad.emitTriggered(e.available, e.target.cgroup, e.target.namespace_,
                                     e.target.pod, e.action);
                });
                break;
            case BusEvent::Kind::Recovered:
                emit([&](ManagerAdaptor& ad) { ad.emitRecovered(e.available, e.value); });
                break;
            case BusEvent::Kind::Victim: {
                const OomKill& k = e.victim;
                emit([&](ManagerAdaptor& ad) {
                    ad.emitVictim(static_cast<uint32_t>(k.pid), k.task, k.cgroup.path,
                                  k.cgroup.pod_namespace, k.cgroup.pod());
                });
                break;
            }
        }
    }
    events_.clear();
}

void BusThread::answer_results() {
    for (const RequestResult& r : results_) {
        auto it = waiting_.find(r.id);
        if (it == waiting_.end()) continue;  // the connection was dropped meanwhile
        auto done = std::move(it->second);
        waiting_.erase(it);
        done(r);
    }
    results_.clear();
}

// ---- what the handlers read -------------------------------------------------

std::vector<HeaviestRow> BusThread::heaviest(size_t max) const {
    if (!snap_.heaviest) return {};
    const auto& rows = *snap_.heaviest;
    return std::vector<HeaviestRow>(rows.begin(),
                                    rows.begin() + static_cast<long>(std::min(max, rows.size())));
}

std::string BusThread::dump() const {
    DumpInput in(snap_.state, snap_.config ? *snap_.config : default_config());
    in.heaviest_available = snap_.heaviest_available;
    in.heaviest = heaviest(10);
    in.last_trigger_target = snap_.last_trigger_target;
    in.bus =
        std::string(dbus::kBusName) + " on " + address_ +
        (registrations_ > 1 ? " (registered " + std::to_string(registrations_) + " times)" : "");
    return render_dump(in);
}

void BusThread::admit(const char* method, const std::string& sender) {
    if (limiter_.admit(sender, clock_.now())) return;
    char rate[96];
    std::snprintf(rate, sizeof rate, "%.0f calls a second, bursts of %.0f", limiter_.rate(),
                  limiter_.burst());
    throw dbus::make_error(dbus::kErrLimitsExceeded, std::string(method) + ": " + sender +
                                                         " calls too often (the limit is " + rate +
                                                         " per caller); try again later");
}

void BusThread::caller_uid(const std::string& sender,
                           std::function<void(const std::string&, uint32_t)> done) {
    if (!driver_) {
        done("not connected to the bus", 0);
        return;
    }
    dbus::caller_uid_async(*driver_, sender, std::move(done));
}

void BusThread::request_reload(std::function<void(const RequestResult&)> done) {
    const uint64_t id = next_request_++;
    waiting_.emplace(id, std::move(done));
    {
        std::lock_guard<std::mutex> g(ch_.mutex);
        ch_.requests.push_back({id, RequestKind::Reload});
    }
    ch_.to_daemon.wake();
}

// ---- connection lifecycle -------------------------------------------------

BusThread::Spec BusThread::link_spec(Duration now) {
    Spec spec;
    switch (link_) {
        case Link::Down:
            // Nothing to serve before the daemon's first publication.
            if (seen_version_ == 0) return spec;
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

void BusThread::link_dispatch(short revents, Duration now) {
    switch (link_) {
        case Link::Down:
            if (seen_version_ != 0 && now >= next_attempt_) start_attempt(now);
            return;
        case Link::Probing: {
            Result<BusProbe::Step> step =
                revents ? probe_.advance(revents) : Result<BusProbe::Step>(BusProbe::Step::Pending);
            if (!step) {
                attempt_failed(step.error().message, now);
            } else if (*step == BusProbe::Step::Answered) {
                probe_.close();
                open_connection(now);
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
        // A budget per iteration: a flood of calls must not starve the events
        // and PropertiesChanged the daemon queued (nor the stop request).
        const Duration deadline = now + kIterationBudget;
        int n = 0;
        while (conn_->processPendingRequest()) {
            if (++n >= kMaxRequestsPerIteration || clock_.now() >= deadline) {
                more_pending_ = true;
                break;
            }
            if (!name_error_.empty() || stop_) break;
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
}

void BusThread::start_attempt(Duration now) {
    address_ = system_bus_address();
    if (auto path = unix_socket_path(address_)) {
        if (Status st = probe_.start(*path, ::geteuid()); !st) {
            // No socket at all: a node without a bus, retried rarely (issue 17).
            no_socket_ = st.error().code == ENOENT;
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

void BusThread::open_connection(Duration now) {
    try {
        // May block (the handshake): only this thread waits.
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

void BusThread::name_reply(const std::string& error, uint32_t reply) {
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
    const Duration now = clock_.now();
    link_ = Link::Named;
    backoff_ = kBackoffMin;
    last_failure_.clear();
    // Clients re-read everything when the name appears; announce changes from here on.
    announced_ = current();
    last_mem_announce_ = now;
    mem_pending_ = false;
    ++registrations_;
    if (!ever_registered_) {
        log(Event::Info, LOG_INFO,
            std::string("D-Bus: ") + dbus::kBusName + " registered on " + address_,
            {{"OOMGUARD_DBUS_ADDRESS", address_}});
    } else {
        log(Event::Info, LOG_NOTICE,
            std::string("D-Bus: ") + dbus::kBusName + " registered again on " + address_ +
                " after " + format_duration(now - down_since_),
            {{"OOMGUARD_DBUS_ADDRESS", address_}});
    }
    ever_registered_ = true;
}

void BusThread::attempt_failed(const std::string& why, Duration now) {
    close_link();
    if (why != last_failure_) {
        last_failure_ = why;
        log(Event::Info, LOG_WARNING,
            std::string("D-Bus: cannot register ") + dbus::kBusName + " on " + address_ + ": " +
                why + "; monitoring continues, retrying in the background",
            {{"OOMGUARD_DBUS_ADDRESS", address_}, {"OOMGUARD_ERROR", why}});
    }
    if (down_since_ == Duration{0}) down_since_ = now;
    next_attempt_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, no_socket_ ? kBackoffMaxNoSocket : kBackoffMax);
    no_socket_ = false;
}

void BusThread::close_link() {
    // Pending Reload calls cannot be answered on a new connection.
    waiting_.clear();
    adaptor_.reset();
    driver_.reset();
    if (conn_) {
        // sd-bus flushes its write queue on close and waits for as long as that
        // takes: forever on a bus daemon that stopped reading. Shut the socket
        // first so that the flush fails at once; unsent messages are lost with
        // the connection anyway.
        try {
            const int fd = dbus::poll_spec(*conn_).fd;
            if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
        } catch (const sdbus::Error&) {
        }
    }
    conn_.reset();
    probe_.close();
    link_ = Link::Down;
    broken_ = false;
    more_pending_ = false;
    mem_pending_ = false;
}

void BusThread::drop(const std::string& why, Duration now) {
    close_link();
    down_since_ = now;
    last_failure_.clear();
    next_attempt_ = now + kBackoffMin;
    backoff_ = std::min(kBackoffMin * 2, kBackoffMax);
    log(Event::Info, LOG_WARNING,
        "D-Bus: lost the connection to " + address_ + " (" + why +
            "); monitoring continues, reconnecting",
        {{"OOMGUARD_DBUS_ADDRESS", address_}, {"OOMGUARD_ERROR", why}});
}

// ---- signals ------------------------------------------------------------

template <typename F>
void BusThread::emit(F&& f) {
    if (link_ != Link::Named || broken_) return;
    try {
        f(*adaptor_);
    } catch (const sdbus::Error&) {
        // The connection is gone or wedged; the loop drops it and reconnects.
        broken_ = true;
    }
}

void BusThread::emit_properties_changed(const std::vector<std::string>& names) {
    emit([&](ManagerAdaptor& ad) { ad.emit_properties_changed(names); });
}

}  // namespace oomguard
