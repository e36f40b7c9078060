// The D-Bus side of the daemon, in a thread of its own so that the bus can
// never hold the daemon's loop: sd-bus calls may block (sdbus-c++ 1.x opens
// the connection and flushes the handshake synchronously, a close flushes the
// write queue, a bus daemon that stops reading fills it), and a frozen bus
// daemon once stopped sampling and the trigger for ~89 s. No sd-bus call is
// ever made from the daemon thread.
//
// The thread runs its own poll() loop over the sd-bus fd (getEventLoopPollData()
// and processPendingRequest(), no enterEventLoopAsync()) and the channel's
// eventfd. It serves the last BusSnapshot the daemon thread published, emits
// the events it queued, and hands Reload to the daemon's loop as a Request,
// answering the call asynchronously when the result comes back. Journal
// entries go to the daemon thread, which logs them.
//
// Connection lifecycle: Down --(backoff)--> Probing --(bus daemon answered the
// AUTH probe)--> Naming --(RequestName replied)--> Named. Any failure goes back
// to Down with backoff; losing a live connection retries after kBackoffMin.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/bus_channel.hpp"
#include "bus/bus_probe.hpp"
#include "bus/rate_limiter.hpp"
#include "core/action_mode.hpp"
#include "core/clock.hpp"
#include "core/mem_state.hpp"

namespace sdbus {
class IConnection;
class IProxy;
}  // namespace sdbus

namespace oomguard {

class ManagerAdaptor;

class BusThread {
public:
    explicit BusThread(BusChannel& channel, const Clock& clock = monotonic_clock());
    // Stops the thread (stop(kStopWait)); if it is stuck in an sd-bus call the
    // process exits here (_exit), since the thread still uses this object.
    ~BusThread();
    BusThread(const BusThread&) = delete;
    BusThread& operator=(const BusThread&) = delete;

    void start();
    // Asks the thread to stop and waits up to `wait`. False when it did not
    // finish (stuck in a blocking sd-bus call): it is detached, and the caller
    // must leave with _exit() without destroying the channel or this object.
    bool stop(Duration wait);

    // ---- for the adaptor's handlers (bus thread only) ----
    const BusSnapshot& snapshot() const { return snap_; }
    const Clock& clock() const { return clock_; }
    std::vector<HeaviestRow> heaviest(size_t max) const;
    std::string dump() const;
    // Throws sdbus::Error LimitsExceeded when `sender` called too often.
    void admit(const char* method, const std::string& sender);
    // Asks the bus daemon for the uid of `sender`; done(error, uid) runs later.
    void caller_uid(const std::string& sender,
                    std::function<void(const std::string&, uint32_t)> done);
    // Queues a Reload for the daemon's loop; done(result) runs when it answers.
    void request_reload(std::function<void(const RequestResult&)> done);

    static constexpr Duration kBackoffMin = std::chrono::milliseconds(100);
    static constexpr Duration kBackoffMax = std::chrono::seconds(5);
    // While the bus socket does not exist (a node without a system bus).
    static constexpr Duration kBackoffMaxNoSocket = std::chrono::seconds(30);
    // How long the bus daemon has to answer the probe.
    static constexpr Duration kProbeTimeout = std::chrono::seconds(1);
    // Bound on calls to the bus daemon (RequestName, GetConnectionUnixUser).
    static constexpr Duration kCallTimeout = std::chrono::seconds(2);
    // MemAvailable changes on every sample: announce it at most this often.
    static constexpr Duration kMemAnnounceInterval = std::chrono::seconds(1);
    // How long the daemon waits for this thread at exit.
    static constexpr Duration kStopWait = std::chrono::milliseconds(400);
    // Per-caller limit on GetHeaviest, Dump and Reload.
    static constexpr double kCallsPerSecond = 20;
    static constexpr double kCallBurst = 40;
    // Requests handled per iteration of this thread's loop, and the time they
    // may take, before it looks at the daemon's events again.
    static constexpr int kMaxRequestsPerIteration = 64;
    static constexpr Duration kIterationBudget = std::chrono::milliseconds(20);

private:
    enum class Link { Down, Probing, Naming, Named };

    // Property values as last announced with PropertiesChanged (which of the
    // state's fields: bus/announced.hpp).
    struct Announced {
        DaemonState state;
        HeaviestRow target;
    };

    BusChannel& ch_;
    const Clock& clock_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex done_mutex_;
    std::condition_variable done_cv_;
    bool done_ = false;

    // The published state, as the handlers see it.
    BusSnapshot snap_;
    uint64_t seen_version_ = 0;
    std::vector<BusEvent> events_;
    std::vector<RequestResult> results_;
    uint64_t next_request_ = 1;
    std::map<uint64_t, std::function<void(const RequestResult&)>> waiting_;

    std::string address_;
    Link link_ = Link::Down;
    BusProbe probe_;
    // Destroyed in reverse: the adaptor and the driver proxy before the connection.
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<sdbus::IProxy> driver_;
    std::unique_ptr<ManagerAdaptor> adaptor_;

    Duration next_attempt_{0};
    Duration deadline_{0};  // of the probe
    Duration backoff_ = kBackoffMin;
    Duration down_since_{0};
    bool ever_registered_ = false;
    bool broken_ = false;        // sending failed: reconnect
    bool no_socket_ = false;     // the failing attempt found no bus socket
    bool more_pending_ = false;  // stopped processing early: poll again at once
    std::string last_failure_;   // each distinct failure is logged once
    std::string name_error_;     // set by the RequestName reply, handled after processing
    uint64_t registrations_ = 0;
    RateLimiter limiter_{kCallsPerSecond, kCallBurst};

    Announced announced_;
    Duration last_mem_announce_{0};
    bool mem_pending_ = false;

    void run();
    void take_from_daemon();
    void log(Event e, int priority, std::string message, std::vector<LogField> fields = {});

    struct Spec {
        int fd = -1;
        short events = 0;
        int64_t timeout_ns = -1;
    };
    Spec link_spec(Duration now);
    void link_dispatch(short revents, Duration now);
    void emit_events();
    void answer_results();

    Announced current() const;
    void announce(Duration now);
    void start_attempt(Duration now);
    void open_connection(Duration now);
    void name_reply(const std::string& error, uint32_t reply);
    void attempt_failed(const std::string& why, Duration now);
    void close_link();
    void drop(const std::string& why, Duration now);
    template <typename F>
    void emit(F&& f);
    void emit_properties_changed(const std::vector<std::string>& names);  // bus_thread.cpp
};

}  // namespace oomguard
