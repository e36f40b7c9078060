// The D-Bus side of the daemon: a LoopSource (the sd-bus fd in the daemon's one
// poll() loop, no threads), an EventSink (signals, PropertiesChanged) and a
// VictimListener (the Victim signal). Nothing here blocks the loop on the bus:
// a connection is opened only after BusProbe saw the bus daemon answer, and the
// name request and the caller-uid check are asynchronous. A missing or
// restarting bus never stops monitoring: the service retries with backoff and
// registers again.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bus/bus_probe.hpp"
#include "bus/heaviest_source.hpp"
#include "bus/oom_victim.hpp"
#include "daemon.hpp"

namespace sdbus {
class IConnection;
class IProxy;
}  // namespace sdbus

namespace oomguard {

class ManagerAdaptor;

class BusService final : public LoopSource, public EventSink, public VictimListener {
public:
    explicit BusService(Daemon& daemon);
    ~BusService() override;
    BusService(const BusService&) = delete;
    BusService& operator=(const BusService&) = delete;

    // The cgroup code's ranking; without one GetHeaviest returns an empty list.
    void set_heaviest_source(HeaviestSource* source) { heaviest_ = source; }

    // LoopSource
    Spec poll_spec() override;
    void dispatch(short revents) override;

    // EventSink
    void on_warning(const DaemonState& s) override;
    void on_trigger(const DaemonState& s, bool ok) override;
    void on_recovered(const DaemonState& s, Duration episode) override;
    void on_state(const DaemonState& s) override;
    void on_config(const DaemonState& s, const Config& c) override;
    // The kmsg reader recorded a kill (DaemonState::last_oom_kill): the Victim signal.
    void on_oom_kill(const DaemonState& s) override;

    // VictimListener: emits Victim and updates LastVictim/KernelOomKills.
    void on_victim(const OomVictim& victim) override;

    // Read by the adaptor's handlers.
    const DaemonState& state() const { return daemon_.state(); }
    std::vector<HeaviestRow> heaviest(size_t max);
    const std::optional<HeaviestRow>& last_trigger_target() const { return last_target_; }
    const std::optional<OomVictim>& last_victim() const { return last_victim_; }
    // The daemon's count, or the victims reported here if the reader does not count.
    uint64_t kernel_oom_kills() const;
    std::string dump();
    // Daemon::reload(); on failure `error` says why (the old config stays).
    bool reload(std::string& error);
    // Asks the bus daemon for the uid of `sender`; done(error, uid) runs later in the loop.
    void caller_uid(const std::string& sender,
                    std::function<void(const std::string&, uint32_t)> done);

    // Registered under org.oomguard1.
    bool registered() const { return link_ == Link::Named; }

    static constexpr Duration kBackoffMin = std::chrono::milliseconds(100);
    static constexpr Duration kBackoffMax = std::chrono::seconds(5);
    // How long the bus daemon has to answer the probe.
    static constexpr Duration kProbeTimeout = std::chrono::seconds(1);
    // Bound on calls to the bus daemon (RequestName, GetConnectionUnixUser).
    static constexpr Duration kCallTimeout = std::chrono::seconds(2);
    // MemAvailable changes on every sample: announce it at most this often.
    static constexpr Duration kMemAnnounceInterval = std::chrono::seconds(1);

private:
    enum class Link { Down, Probing, Naming, Named };

    // Property values as last announced with PropertiesChanged.
    struct Announced {
        uint64_t mem_available = 0, mem_total = 0, threshold = 0, warn = 0;
        MemState state = MemState::Ok;
        ActionMode mode = ActionMode::Sysrq;
        bool dry_run = false;
        uint64_t triggers = 0, failures = 0, last_trigger = 0, oom_kills = 0, victims = 0;
        HeaviestRow target;
        std::string last_error;
    };

    Daemon& daemon_;
    HeaviestSource* heaviest_ = nullptr;
    std::string address_;
    Link link_ = Link::Down;
    BusProbe probe_;
    // Destroyed in reverse: the adaptor and the driver proxy before the connection.
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<sdbus::IProxy> driver_;
    std::unique_ptr<ManagerAdaptor> adaptor_;

    Duration next_attempt_{0};
    Duration deadline_{0};  // of the probe or the name request
    Duration backoff_ = kBackoffMin;
    Duration down_since_{0};
    bool ever_registered_ = false;
    bool broken_ = false;        // sending failed: reconnect
    bool more_pending_ = false;  // stopped processing early: poll again at once
    std::string last_failure_;   // each distinct failure is logged once
    std::string name_error_;     // set by the RequestName reply, handled after processing
    uint64_t registrations_ = 0;

    std::optional<HeaviestRow> last_target_;
    std::optional<OomVictim> last_victim_;
    uint64_t victims_seen_ = 0;

    Announced announced_;
    Duration last_mem_announce_{0};
    bool mem_pending_ = false;

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
};

}  // namespace oomguard
