// The daemon thread's half of the D-Bus side: an EventSink that publishes what
// the bus serves (a BusSnapshot) and the signals to emit into the BusChannel,
// and a LoopSource on the channel's eventfd that performs the bus thread's
// requests (Reload) at loop level and logs its journal entries.
//
// It never waits for the bus thread: the channel's mutex is only try_lock()ed;
// when busy, everything stays pending here and goes out on the next iteration
// (poll_spec() asks for a 1 ms timeout). Free of sdbus-c++, and allocation-free
// when nothing happened (a publication copies the DaemonState into a snapshot
// whose strings keep their capacity). A state that differs from the snapshot's
// only in its sample counters is not copied: those go through two atomics.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "bus/bus_channel.hpp"
#include "core/event_sink.hpp"
#include "core/heaviest_source.hpp"
#include "core/host.hpp"
#include "core/loop_source.hpp"

namespace oomguard {

class BusPublisher final : public EventSink, public LoopSource {
public:
    BusPublisher(Host& host, BusChannel& channel);
    // The cgroup code's ranking; without one GetHeaviest returns an empty list.
    void set_heaviest_source(HeaviestSource* source);

    // Rows of the ranking published for GetHeaviest/Dump (GetHeaviest's maximum).
    static constexpr size_t kPublishedRows = 1000;

    // EventSink
    void on_warning(const DaemonState& s) override;
    void on_trigger(const DaemonState& s, const TriggerReport& t) override;
    void on_recovered(const DaemonState& s, Duration episode) override;
    void on_state(const DaemonState& s) override;
    void on_config(const DaemonState& s, const Config& c) override;
    void on_oom_kill(const DaemonState& s, const OomKill& kill) override;

    // LoopSource
    Spec poll_spec() override;
    void dispatch(short revents) override;

    // Signals queued for a bus thread that does not take them, at most.
    static constexpr size_t kMaxQueuedEvents = 256;

    // Publications that found the channel busy and went out later.
    uint64_t deferred() const { return deferred_; }

private:
    Host& host_;
    BusChannel& ch_;
    HeaviestSource* heaviest_ = nullptr;

    // Not yet handed to the bus thread.
    bool rich_dirty_ = true;
    std::optional<HeaviestRow> target_;
    std::shared_ptr<const std::vector<HeaviestRow>> rows_;
    std::shared_ptr<const Config> config_;
    std::vector<BusEvent> events_;
    std::vector<RequestResult> results_;
    bool pending_ = false;
    bool fetch_pending_ = false;  // requests/logs not yet taken: the channel was busy
    uint64_t heaviest_generation_ = 0;
    bool heaviest_read_ = false;
    uint64_t deferred_ = 0;

    std::vector<Request> requests_;  // scratch, swapped with the channel's
    std::vector<BusLogEntry> logs_;

    void refresh_ranking();
    // only_if_changed: not when the state equals the snapshot's (but for the
    // sample counters, which go through atomics) and nothing else is queued.
    void publish(bool only_if_changed = false);
    void perform(const std::vector<Request>& requests);
};

}  // namespace oomguard
