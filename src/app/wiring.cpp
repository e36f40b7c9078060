#include "app/wiring.hpp"

namespace oomguard {

Components::Components(Daemon& daemon, WiringOptions options)
    : targeting(daemon, daemon.clock()),
      oom_reporter(daemon, targeting.monitor(), daemon.meminfo(), daemon.clock()),
      heaviest(targeting),
      metrics(daemon.journal(), daemon.config().metrics, daemon.clock()),
      prediction(daemon, targeting.monitor(), daemon.clock()),
      bus_publisher(daemon, bus_channel) {
    metrics.set_heaviest_source(&heaviest);
    metrics.set_allocatable_probe([this]() -> std::optional<bool> {
        auto a = targeting.monitor().allocatable();
        if (!a.kubernetes || !a.limit_known) return std::nullopt;
        return a.limit.has_value();
    });
    bus_publisher.set_heaviest_source(&heaviest);
    // Sinks hear of an event in this order: the cgroup code first (it names the
    // trigger's target, which the bus then reads), the bus last.
    daemon.set_trigger_hook(&targeting);
    daemon.add_sink(&targeting);
    daemon.add_source(&targeting);
    daemon.add_source(&oom_reporter);
    daemon.add_sink(&oom_reporter);
    daemon.add_source(&prediction);
    daemon.add_sink(&prediction);
    daemon.add_sink(&metrics);
    if (options.bus) {
        daemon.add_source(&bus_publisher);
        daemon.add_sink(&bus_publisher);
    }
}

}  // namespace oomguard
