// The one adaptor class: the handlers of org.oomguard1.Manager, run on the bus
// thread. It reads the snapshot the daemon thread published (through
// BusThread), never the daemon itself, and turns every failure into a D-Bus error.
#pragma once

#include <string>
#include <vector>

#include "manager_adaptor.h"  // generated from packaging/dbus/org.oomguard1.xml
#include "sdbus_compat.hpp"

namespace oomguard {

class BusThread;

class ManagerAdaptor final : public sdbus::AdaptorInterfaces<org::oomguard1::Manager_adaptor> {
public:
    ManagerAdaptor(sdbus::IConnection& connection, BusThread& service);
    ~ManagerAdaptor();

    void emit_properties_changed(const std::vector<std::string>& names);

    // GetHeaviest(count) accepts 0..kMaxHeaviest.
    static constexpr uint32_t kMaxHeaviest = 1000;

    using HeaviestStruct = sdbus::Struct<std::string, std::string, std::string, std::string,
                                         std::string, uint64_t, uint64_t>;

private:
    BusThread& service_;

    std::vector<HeaviestStruct> GetHeaviest(const uint32_t& count) override;
    std::string Dump() override;
    void Reload(sdbus::Result<>&& result) override;

    uint64_t MemAvailable() override;
    uint64_t MemTotal() override;
    uint64_t Threshold() override;
    uint64_t WarnThreshold() override;
    std::string State() override;
    std::string Mode() override;
    bool DryRun() override;
    uint64_t TriggerCount() override;
    uint64_t TriggerFailures() override;
    uint64_t LastTrigger() override;
    sdbus::Struct<std::string, std::string, std::string> LastTriggerTarget() override;
    uint64_t KernelOomKills() override;
    sdbus::Struct<uint64_t, uint32_t, std::string, std::string, std::string, std::string>
    LastVictim() override;
    sdbus::Struct<uint64_t, uint32_t, std::string, int64_t, std::string, std::string, std::string,
                  std::string>
    PredictedVictim() override;
    std::vector<sdbus::Struct<std::string, uint32_t>> AuditFindings() override;
    std::string ConfigPath() override;
    std::string Version() override;
    std::string LastError() override;
};

}  // namespace oomguard
