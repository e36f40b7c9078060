// oomguardctl's side of org.oomguard1: one system bus connection and the
// generated proxy. D-Bus failures become a CtlFailure carrying the exit code.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ctl/status_report.hpp"
#include "manager_proxy.h"  // generated from packaging/dbus/org.oomguard1.xml
#include "sdbus_compat.hpp"

namespace oomguard::ctl {

// Exit codes, documented in --help.
enum ExitCode : int {
    kExitOk = 0,
    kExitFailed = 1,      // the daemon answered with an error (e.g. a bad config on reload)
    kExitUsage = 2,       // bad command line
    kExitNotRunning = 3,  // no oomguard on the bus (org.oomguard1 has no owner)
    kExitDenied = 4,      // the bus policy or the daemon refused (reload needs root)
    kExitNoBus = 5,       // cannot connect to the system bus
    kExitNoReply = 6,     // oomguard did not answer in time
};

struct CtlFailure {
    int exit_code;
    std::string message;
};

// Maps a D-Bus error to an exit code and a message for humans.
CtlFailure classify(const sdbus::Error& e);

// Signal callbacks for `monitor`.
struct MonitorHandlers {
    std::function<void(uint64_t available, uint64_t threshold)> warning;
    std::function<void(uint64_t available, const std::string& cgroup, const std::string& ns,
                       const std::string& pod, const std::string& action)>
        triggered;
    std::function<void(uint32_t pid, const std::string& name, const std::string& cgroup,
                       const std::string& ns, const std::string& pod)>
        victim;
    std::function<void(uint64_t available, uint64_t duration_usec)> recovered;
    std::function<void(const std::map<std::string, sdbus::Variant>& changed)> properties;
    std::function<void(bool running)> owner;  // oomguard appeared on / left the bus
};

class ManagerClient {
public:
    // Connects to the system bus; throws CtlFailure{kExitNoBus}.
    ManagerClient();
    ~ManagerClient();

    // Each throws CtlFailure.
    StatusReport status();
    std::vector<HeaviestRow> heaviest(uint32_t count);
    std::string dump();
    void reload();
    bool running();

    // Follows the signals until SIGINT/SIGTERM; returns an exit code.
    int monitor(const MonitorHandlers& h);

    static constexpr std::chrono::seconds kCallTimeout{5};

private:
    class Proxy;
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<Proxy> proxy_;
    std::string address_;

    template <typename F>
    auto call(F&& f) -> decltype(f());
};

}  // namespace oomguard::ctl
