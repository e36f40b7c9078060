#include "bus/manager_adaptor.hpp"

#include <exception>
#include <memory>

#include "bus/bus_thread.hpp"
#include "core/clock.hpp"
#include "core/mem_state.hpp"
#include "oomguard_build_config.h"

namespace oomguard {

namespace {

// sdbus-c++ turns a thrown sdbus::Error into an error reply; anything else
// must not unwind through sd-bus's C frames, so it becomes Failed here.
template <typename F>
auto guarded(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const sdbus::Error&) {
        throw;
    } catch (const std::exception& e) {
        throw dbus::make_error(dbus::kErrFailed, e.what());
    }
}

}  // namespace

ManagerAdaptor::ManagerAdaptor(sdbus::IConnection& connection, BusThread& service)
    : AdaptorInterfaces(connection, dbus::object_path(dbus::kObjectPath)), service_(service) {
    registerAdaptor();
}

ManagerAdaptor::~ManagerAdaptor() { unregisterAdaptor(); }

void ManagerAdaptor::emit_properties_changed(const std::vector<std::string>& names) {
    dbus::emit_properties_changed(getObject(), INTERFACE_NAME, names);
}

std::vector<ManagerAdaptor::HeaviestStruct> ManagerAdaptor::GetHeaviest(const uint32_t& count) {
    return guarded([&] {
        service_.admit("GetHeaviest", dbus::current_sender(getObject()));
        if (count > kMaxHeaviest)
            throw dbus::make_error(dbus::kErrInvalidArgs, "GetHeaviest: count " +
                                                              std::to_string(count) +
                                                              " is out of range (0.." +
                                                              std::to_string(kMaxHeaviest) + ")");
        // From the last published ranking: no scan per call.
        std::vector<HeaviestStruct> out;
        for (HeaviestRow& r : service_.heaviest(count))
            out.emplace_back(std::move(r.cgroup), std::move(r.namespace_), std::move(r.pod),
                             std::move(r.container), std::move(r.qos), r.working_set, r.limit);
        return out;
    });
}

std::string ManagerAdaptor::Dump() {
    return guarded([&] {
        service_.admit("Dump", dbus::current_sender(getObject()));
        return service_.dump();
    });
}

void ManagerAdaptor::Reload(sdbus::Result<>&& result) {
    // Async: the caller's uid comes from the bus daemon, and the reload itself is
    // done by the daemon's loop (like SIGHUP), which answers later.
    auto reply = std::make_shared<sdbus::Result<>>(std::move(result));
    std::string sender;
    try {
        sender = dbus::current_sender(getObject());
        service_.admit("Reload", sender);
    } catch (const sdbus::Error& e) {
        reply->returnError(e);
        return;
    }
    BusThread& service = service_;
    service_.caller_uid(sender, [&service, reply](const std::string& error, uint32_t uid) {
        try {
            if (!error.empty()) {
                reply->returnError(dbus::make_error(
                    dbus::kErrAccessDenied, "Reload: cannot determine the caller's uid: " + error));
                return;
            }
            // The bus policy already limits Reload to root; this holds under a looser policy too.
            if (uid != 0) {
                reply->returnError(dbus::make_error(
                    dbus::kErrAccessDenied,
                    "Reload requires root; the caller's uid is " + std::to_string(uid)));
                return;
            }
            service.request_reload([reply](const RequestResult& r) {
                try {
                    if (r.ok())
                        reply->returnResults();
                    else
                        reply->returnError(dbus::make_error(dbus::kErrReloadFailed, r.error->message));
                } catch (const std::exception&) {
                    // The caller left or the connection broke; nothing to answer.
                }
            });
        } catch (const std::exception&) {
            // The caller left or the connection broke; nothing to answer.
        }
    });
}

uint64_t ManagerAdaptor::MemAvailable() { return service_.snapshot().state.sample.mem_available; }
uint64_t ManagerAdaptor::MemTotal() { return service_.snapshot().state.sample.mem_total; }
uint64_t ManagerAdaptor::Threshold() { return service_.snapshot().state.levels.min; }
uint64_t ManagerAdaptor::WarnThreshold() { return service_.snapshot().state.levels.warn; }
std::string ManagerAdaptor::State() { return to_string(service_.snapshot().state.state); }
std::string ManagerAdaptor::Mode() { return to_string(service_.snapshot().state.mode); }
bool ManagerAdaptor::DryRun() { return service_.snapshot().state.dry_run; }
uint64_t ManagerAdaptor::TriggerCount() { return service_.snapshot().state.triggers_total; }
uint64_t ManagerAdaptor::TriggerFailures() {
    return service_.snapshot().state.trigger_failures_total;
}
uint64_t ManagerAdaptor::LastTrigger() {
    return service_.snapshot().state.last_trigger_realtime_usec;
}

sdbus::Struct<std::string, std::string, std::string> ManagerAdaptor::LastTriggerTarget() {
    const auto& t = service_.snapshot().last_trigger_target;
    if (!t) return {std::string(), std::string(), std::string()};
    return {t->cgroup, t->namespace_, t->pod};
}

// Every OOM kill the kernel reported (memcg and node-wide, sysrq included): the
// daemon's count: oomguard_node_oom_kills_total + oomguard_memcg_oom_kills_total.
uint64_t ManagerAdaptor::KernelOomKills() { return service_.snapshot().state.oom_kills_total; }

sdbus::Struct<uint64_t, uint32_t, std::string, std::string, std::string, std::string>
ManagerAdaptor::LastVictim() {
    const OomKill& k = service_.snapshot().state.last_oom_kill;
    if (k.pid < 0)
        return {uint64_t{0},   uint32_t{0},   std::string(),
                std::string(), std::string(), std::string()};
    return {k.realtime_usec, static_cast<uint32_t>(k.pid), k.task,
            k.cgroup.path,   k.cgroup.pod_namespace,       k.cgroup.pod()};
}

sdbus::Struct<uint64_t, uint32_t, std::string, int64_t, std::string, std::string, std::string,
              std::string>
ManagerAdaptor::PredictedVictim() {
    const PredictedTask& p = service_.snapshot().state.prediction;
    if (p.pid <= 0) return {uint64_t{0}, uint32_t{0}, "", int64_t{0}, "", "", "", ""};
    // The scan's monotonic time as realtime, like every other timestamp here.
    const int64_t ago_usec =
        std::chrono::duration_cast<std::chrono::microseconds>(service_.clock().now() - p.at)
            .count();
    const uint64_t now = realtime_usec();
    const uint64_t at = ago_usec > 0 && static_cast<uint64_t>(ago_usec) < now
                            ? now - static_cast<uint64_t>(ago_usec)
                            : now;
    return {at,
            static_cast<uint32_t>(p.pid),
            p.comm,
            p.oom_score,
            p.cgroup.path,
            p.cgroup.pod_namespace,
            p.cgroup.pod(),
            p.cgroup.container_name};
}

std::vector<sdbus::Struct<std::string, uint32_t>> ManagerAdaptor::AuditFindings() {
    const AuditCounts& a = service_.snapshot().state.audit;
    std::vector<sdbus::Struct<std::string, uint32_t>> out;
    for (size_t i = 0; i < kAuditChecks.size(); ++i)
        if (a.findings[i]) out.push_back({std::string(kAuditChecks[i]), a.findings[i]});
    return out;
}

std::string ManagerAdaptor::ConfigPath() { return service_.snapshot().state.config_path; }
std::string ManagerAdaptor::Version() { return OOMGUARD_VERSION; }
std::string ManagerAdaptor::LastError() { return service_.snapshot().state.last_error; }

}  // namespace oomguard
