// PropertiesChanged: what the bus thread announces of each new snapshot (the
// memory values at most once per kMemAnnounceInterval).
#include "bus/announced.hpp"
#include "bus/bus_thread.hpp"

namespace oomguard {

BusThread::Announced BusThread::current() const {
    return {snap_.state, snap_.last_trigger_target.value_or(HeaviestRow{})};
}

void BusThread::announce(Duration now) {
    if (link_ != Link::Named || broken_) return;
    // Compared with the snapshot in place; copied only when something changed.
    const DaemonState& cur = snap_.state;
    const HeaviestRow no_target;
    const HeaviestRow& target = snap_.last_trigger_target ? *snap_.last_trigger_target : no_target;
    Announced& a = announced_;
    std::vector<std::string> names, mem_names;
    for (const AnnouncedProperty& p : announced_properties())
        if (p.differs(cur, a.state)) (p.memory ? mem_names : names).emplace_back(p.name);
    if (!(target == a.target)) names.emplace_back("LastTriggerTarget");
    const bool mem_changed = !mem_names.empty();
    const bool mem_due = now - last_mem_announce_ >= kMemAnnounceInterval;
    if (mem_changed && mem_due) {
        names.insert(names.end(), mem_names.begin(), mem_names.end());
        last_mem_announce_ = now;
        mem_pending_ = false;
    } else if (mem_changed) {
        mem_pending_ = true;  // link_spec() wakes the loop when it is due
    }
    if (names.empty()) return;
    // Keep the old memory values when they were held back.
    const MemSample held = a.state.sample;
    a.state = cur;
    a.target = target;
    if (mem_changed && !mem_due) {
        a.state.sample.mem_available = held.mem_available;
        a.state.sample.mem_total = held.mem_total;
    }
    emit_properties_changed(names);
}

}  // namespace oomguard
