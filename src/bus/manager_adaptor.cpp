#include "bus/manager_adaptor.hpp"

#include <exception>
#include <memory>

#include "bus/bus_service.hpp"
#include "oomguard_build_config.h"
#include "policy/policy.hpp"

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

ManagerAdaptor::ManagerAdaptor(sdbus::IConnection& connection, BusService& service)
    : AdaptorInterfaces(connection, dbus::object_path(dbus::kObjectPath)), service_(service) {
    registerAdaptor();
}

ManagerAdaptor::~ManagerAdaptor() { unregisterAdaptor(); }

void ManagerAdaptor::emit_properties_changed(const std::vector<std::string>& names) {
    dbus::emit_properties_changed(getObject(), INTERFACE_NAME, names);
}

std::vector<ManagerAdaptor::HeaviestStruct> ManagerAdaptor::GetHeaviest(const uint32_t& count) {
    return guarded([&] {
        if (count > kMaxHeaviest)
            throw dbus::make_error(dbus::kErrInvalidArgs, "GetHeaviest: count " +
                                                              std::to_string(count) +
                                                              " is out of range (0.." +
                                                              std::to_string(kMaxHeaviest) + ")");
        std::vector<HeaviestStruct> out;
        for (HeaviestRow& r : service_.heaviest(count))
            out.emplace_back(std::move(r.cgroup), std::move(r.namespace_), std::move(r.pod),
                             std::move(r.container), std::move(r.qos), r.working_set, r.limit);
        return out;
    });
}

std::string ManagerAdaptor::Dump() {
    return guarded([&] { return service_.dump(); });
}

void ManagerAdaptor::Reload(sdbus::Result<>&& result) {
    // Async: the caller's uid comes from the bus daemon, and the loop must not wait for it.
    auto reply = std::make_shared<sdbus::Result<>>(std::move(result));
    std::string sender;
    try {
        sender = dbus::current_sender(getObject());
    } catch (const sdbus::Error& e) {
        reply->returnError(
            dbus::make_error(dbus::kErrAccessDenied, "Reload: no sender: " + e.getMessage()));
        return;
    }
    service_.caller_uid(sender, [this, reply](const std::string& error, uint32_t uid) {
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
            std::string why;
            if (service_.reload(why))
                reply->returnResults();
            else
                reply->returnError(dbus::make_error(dbus::kErrReloadFailed, why));
        } catch (const std::exception&) {
            // The caller left or the connection broke; nothing to answer.
        }
    });
}

uint64_t ManagerAdaptor::MemAvailable() { return service_.state().sample.mem_available; }
uint64_t ManagerAdaptor::MemTotal() { return service_.state().sample.mem_total; }
uint64_t ManagerAdaptor::Threshold() { return service_.state().levels.min; }
uint64_t ManagerAdaptor::WarnThreshold() { return service_.state().levels.warn; }
std::string ManagerAdaptor::State() { return to_string(service_.state().state); }
std::string ManagerAdaptor::Mode() { return to_string(service_.state().mode); }
bool ManagerAdaptor::DryRun() { return service_.state().dry_run; }
uint64_t ManagerAdaptor::TriggerCount() { return service_.state().triggers_total; }
uint64_t ManagerAdaptor::TriggerFailures() { return service_.state().trigger_failures_total; }
uint64_t ManagerAdaptor::LastTrigger() { return service_.state().last_trigger_realtime_usec; }

sdbus::Struct<std::string, std::string, std::string> ManagerAdaptor::LastTriggerTarget() {
    const auto& t = service_.last_trigger_target();
    if (!t) return {std::string(), std::string(), std::string()};
    return {t->cgroup, t->namespace_, t->pod};
}

uint64_t ManagerAdaptor::KernelOomKills() { return service_.kernel_oom_kills(); }

sdbus::Struct<uint64_t, uint32_t, std::string, std::string, std::string, std::string>
ManagerAdaptor::LastVictim() {
    const auto& v = service_.last_victim();
    if (!v)
        return {uint64_t{0},   uint32_t{0},   std::string(),
                std::string(), std::string(), std::string()};
    return {v->realtime_usec, v->pid, v->name, v->cgroup, v->namespace_, v->pod};
}

std::string ManagerAdaptor::ConfigPath() { return service_.state().config_path; }
std::string ManagerAdaptor::Version() { return OOMGUARD_VERSION; }
std::string ManagerAdaptor::LastError() { return service_.state().last_error; }

}  // namespace oomguard
