// After the trigger: what did the kernel kill? Reads kmsg as a LoopSource of the
// daemon's poll loop, maps each OOM victim's cgroup to its pod and container,
// and logs it:
//  - Event::Victim for a node-wide kill (what sysrq 'f' does), with the memory
//    that came back and how fast (MemAvailable sampled every 5ms for up to 2s);
//  - Event::KernelOom for a memcg kill (a pod hit its own limit), counted in
//    DaemonState::memcg_oom_kills_total;
//  - "OOM request ignored" (sysrq found no eligible task) as a warning.
#pragma once

#include <string>
#include <vector>

#include "cgroup/cgroup_monitor.hpp"
#include "cgroup/kmsg.hpp"
#include "config/config.hpp"
#include "core/clock.hpp"
#include "core/event_sink.hpp"
#include "core/host.hpp"
#include "core/loop_source.hpp"
#include "core/oom_kill.hpp"
#include "sensors/meminfo.hpp"

namespace oomguard {

// Maps a kernel OOM kill to its pod and container (names from the monitor's
// pod log directory). Works for any task_memcg path: the kubepods component is
// found wherever it sits.
OomKill attribute_oom_kill(const KernelOomEvent& e, CgroupMonitor& monitor);

class OomReporter final : public LoopSource, public EventSink {
public:
    // meminfo: the daemon's reader (shared: one open file, and it follows a
    // reload's proc root). Opens kmsg now, before the daemon's start entry: the
    // reader starts at the end of the log, and a report that comes after the
    // start entry must be read.
    OomReporter(Host& host, CgroupMonitor& monitor, MeminfoReader& meminfo,
                const Clock& clock = monotonic_clock());

    void on_config(const DaemonState& state, const Config& config) override;
    void on_trigger(const DaemonState& state, const TriggerReport& t) override;
    Spec poll_spec() override;
    void dispatch(short revents) override;

    static constexpr Duration kSampleEvery = std::chrono::milliseconds(5);
    static constexpr Duration kTrackFor = std::chrono::seconds(2);
    static constexpr Duration kSettled = std::chrono::milliseconds(200);
    static constexpr Duration kAfterTrigger = std::chrono::seconds(10);

private:
    Host& host_;
    CgroupMonitor& monitor_;
    MeminfoReader& meminfo_;
    const Clock& clock_;
    KmsgReader kmsg_;
    std::string kmsg_path_;
    std::string kmsg_error_;
    OomReportAssembler assembler_;
    std::vector<KernelOomEvent> events_;
    Duration pending_since_{0};
    Duration next_tail_{0};  // a regular file (tests) is read every 100ms

    bool triggered_ = false;
    Duration trigger_at_{0};
    uint64_t avail_at_trigger_ = 0;
    // Kernel timestamp of the "sysrq: Manual OOM execution" after our trigger:
    // kill latency is measured in the kernel's own clock (kmsg timestamps are
    // not CLOCK_MONOTONIC; under a VM they drift apart by tens of ms).
    uint64_t manual_oom_ts_usec_ = 0;
    std::string memcg_group_leader_;  // task_memcg of the last memcg OOM victim

    struct Tracking {
        bool active = false;
        OomKill info;
        uint64_t ts_usec = 0;  // kernel timestamp of the kill
        uint64_t baseline = 0;
        uint64_t best = 0;
        Duration from{0};  // the trigger, or when we read the report
        Duration best_at{0};
        Duration started{0};
        Duration next_sample{0};
        uint32_t tasks = 1;    // with memory.oom.group, the whole container's
        bool meminfo = false;  // MemAvailable could be read at the report
    } track_;

    void drain();
    void handle(const KernelOomEvent& e);
    void sample(Duration now);
    void finish_victim();
    bool merge_group_member(const KernelOomEvent& e);
};

}  // namespace oomguard
