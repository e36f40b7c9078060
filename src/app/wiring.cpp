#include "app/wiring.hpp"

namespace oomguard {

Components::Components(Daemon& daemon)
    : targeting(daemon, daemon.clock()),
      oom_reporter(daemon, targeting.monitor(), daemon.meminfo(), daemon.clock()),
      heaviest(targeting),
      metrics(daemon.journal(), daemon.config().metrics, daemon.clock()),
      prediction(daemon, targeting.monitor(), daemon.clock()),
      daemon_(daemon) {
    metrics.set_heaviest_source(&heaviest);
    metrics.set_allocatable_probe([this]() -> std::optional<bool> {
        auto a = targeting.monitor().allocatable();
        if (!a.kubernetes || !a.limit_known) return std::nullopt;
        return a.limit.has_value();
    });
    // Sinks hear of an event in this order: the cgroup code first (it names the
    // trigger's target, which the bus then reads), an adapter last.
    daemon.set_trigger_hook(&targeting);
    daemon.add_sink(&targeting);
    daemon.add_source(&targeting);
    daemon.add_source(&oom_reporter);
    daemon.add_sink(&oom_reporter);
    daemon.add_source(&prediction);
    daemon.add_sink(&prediction);
    daemon.add_sink(&metrics);
}

void Components::add_adapter(LoopSource& source, EventSink& sink) {
    daemon_.add_source(&source);
    daemon_.add_sink(&sink);
}

}  // namespace oomguard
