#include "ctl/manager_client.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>

#include "bus/system_bus_address.hpp"

namespace oomguard::ctl {

class ManagerClient::Proxy final
    : public sdbus::ProxyInterfaces<org::oomguard1::Manager_proxy, sdbus::Properties_proxy> {
public:
    explicit Proxy(sdbus::IConnection& c)
        : ProxyInterfaces(c, dbus::service_name(dbus::kBusName),
                          dbus::object_path(dbus::kObjectPath)) {}
    ~Proxy() { unregisterProxy(); }

    // Subscribes to the signals (AddMatch), only for `monitor`.
    void listen(const MonitorHandlers* h) {
        handlers_ = h;
        registerProxy();
    }

private:
    const MonitorHandlers* handlers_ = nullptr;

    void onWarning(const uint64_t& available, const uint64_t& threshold) override {
        if (handlers_ && handlers_->warning) handlers_->warning(available, threshold);
    }
    void onTriggered(const uint64_t& available, const std::string& cgroup, const std::string& ns,
                     const std::string& pod, const std::string& action) override {
        if (handlers_ && handlers_->triggered)
            handlers_->triggered(available, cgroup, ns, pod, action);
    }
    void onVictim(const uint32_t& pid, const std::string& name, const std::string& cgroup,
                  const std::string& ns, const std::string& pod) override {
        if (handlers_ && handlers_->victim) handlers_->victim(pid, name, cgroup, ns, pod);
    }
    void onRecovered(const uint64_t& available, const uint64_t& duration_usec) override {
        if (handlers_ && handlers_->recovered) handlers_->recovered(available, duration_usec);
    }
    void onPropertiesChanged(const std::string& interface,
                             const std::map<std::string, sdbus::Variant>& changed,
                             const std::vector<std::string>&) override {
        if (interface == dbus::kInterface && handlers_ && handlers_->properties)
            handlers_->properties(changed);
    }
};

CtlFailure classify(const sdbus::Error& e) {
    const std::string name = dbus::error_name(e);
    const std::string msg = e.getMessage();
    auto is = [&name](const char* suffix) {
        return name == std::string("org.freedesktop.DBus.Error.") + suffix;
    };
    if (is("ServiceUnknown") || is("NameHasNoOwner"))
        return {kExitNotRunning, "oomguard is not running (" + std::string(dbus::kBusName) +
                                     " has no owner on the system bus)"};
    if (is("AccessDenied")) return {kExitDenied, "access denied: " + msg};
    if (is("NoReply") || is("Timeout") || is("TimedOut"))
        return {kExitNoReply, "oomguard did not answer: " + msg};
    if (is("Disconnected") || is("NoServer") || is("NoNetwork"))
        return {kExitNoBus, "lost the system bus connection: " + msg};
    return {kExitFailed, msg.empty() ? name : msg};
}

ManagerClient::ManagerClient() : address_(system_bus_address()) {
    try {
        conn_ = dbus::open_system_bus();
        dbus::set_call_timeout(*conn_, kCallTimeout);
        proxy_ = std::make_unique<Proxy>(*conn_);
    } catch (const sdbus::Error& e) {
        throw CtlFailure{kExitNoBus,
                         "cannot connect to the system bus at " + address_ + ": " + e.getMessage()};
    }
}

ManagerClient::~ManagerClient() {
    proxy_.reset();
    conn_.reset();
}

template <typename F>
auto ManagerClient::call(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const sdbus::Error& e) {
        throw classify(e);
    }
}

bool ManagerClient::running() {
    return call([&] { return dbus::name_has_owner(*conn_, dbus::kBusName); });
}

StatusReport ManagerClient::status() {
    return call([&] {
        const std::map<std::string, sdbus::Variant> props = proxy_->GetAll(dbus::kInterface);
        auto get = [&props](const char* name, auto& out) {
            auto it = props.find(name);
            if (it == props.end())
                throw CtlFailure{kExitFailed,
                                 std::string("oomguard did not report the property ") + name};
            out = it->second.get<std::decay_t<decltype(out)>>();
        };
        StatusReport r;
        get("Version", r.version);
        get("State", r.state);
        get("Mode", r.mode);
        get("ConfigPath", r.config_path);
        get("LastError", r.last_error);
        get("DryRun", r.dry_run);
        get("MemAvailable", r.mem_available);
        get("MemTotal", r.mem_total);
        get("Threshold", r.threshold);
        get("WarnThreshold", r.warn_threshold);
        get("TriggerCount", r.trigger_count);
        get("TriggerFailures", r.trigger_failures);
        get("LastTrigger", r.last_trigger_usec);
        get("KernelOomKills", r.kernel_oom_kills);
        sdbus::Struct<std::string, std::string, std::string> target;
        get("LastTriggerTarget", target);
        std::tie(r.target_cgroup, r.target_namespace, r.target_pod) = target;
        sdbus::Struct<uint64_t, uint32_t, std::string, std::string, std::string, std::string> v;
        get("LastVictim", v);
        uint32_t pid = 0;
        std::tie(r.victim.realtime_usec, pid, r.victim.task, r.victim.cgroup.path,
                 r.victim.cgroup.pod_namespace, r.victim.cgroup.pod_name) = v;
        r.victim.pid = pid;
        sdbus::Struct<uint64_t, uint32_t, std::string, int64_t, std::string, std::string,
                      std::string, std::string>
            p;
        get("PredictedVictim", p);
        uint32_t ppid = 0;
        std::tie(r.predicted_usec, ppid, r.predicted.comm, r.predicted.oom_score,
                 r.predicted.cgroup.path, r.predicted.cgroup.pod_namespace,
                 r.predicted.cgroup.pod_name, r.predicted.cgroup.container_name) = p;
        r.predicted.pid = ppid;
        std::vector<sdbus::Struct<std::string, uint32_t>> audit;
        get("AuditFindings", audit);
        for (const auto& a : audit) r.audit.emplace_back(std::get<0>(a), std::get<1>(a));
        r.top = heaviest(3);
        return r;
    });
}

std::vector<HeaviestRow> ManagerClient::heaviest(uint32_t count) {
    return call([&] {
        std::vector<HeaviestRow> rows;
        for (const auto& s : proxy_->GetHeaviest(count)) {
            HeaviestRow r;
            std::tie(r.cgroup, r.namespace_, r.pod, r.container, r.qos, r.working_set, r.limit) = s;
            rows.push_back(std::move(r));
        }
        return rows;
    });
}

std::string ManagerClient::dump() {
    return call([&] { return proxy_->Dump(); });
}

void ManagerClient::reload() {
    call([&] { proxy_->Reload(); });
}

int ManagerClient::monitor(const MonitorHandlers& h) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) throw CtlFailure{kExitFailed, std::string("signalfd: ") + std::strerror(errno)};
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{sfd};

    sdbus::Slot owner_slot;
    call([&] {
        proxy_->listen(&h);
        owner_slot = conn_->addMatch(
            "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
            "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" +
                std::string(dbus::kBusName) + "'",
            [&h](sdbus::Message& m) {
                std::string name, old_owner, new_owner;
                m >> name >> old_owner >> new_owner;
                if (h.owner) h.owner(!new_owner.empty());
            });
    });
    try {
        for (;;) {
            while (conn_->processPendingRequest()) {
            }
            const dbus::PollSpec p = dbus::poll_spec(*conn_);
            pollfd fds[2] = {{p.fd, p.events, 0}, {sfd, POLLIN, 0}};
            int timeout_ms =
                p.timeout_ns < 0 ? -1 : static_cast<int>((p.timeout_ns + 999'999) / 1'000'000);
            if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR)
                throw CtlFailure{kExitFailed, std::string("poll: ") + std::strerror(errno)};
            if (fds[1].revents & POLLIN) return kExitOk;
        }
    } catch (const sdbus::Error& e) {
        throw CtlFailure{kExitNoBus, "lost the system bus connection: " + e.getMessage()};
    }
}

}  // namespace oomguard::ctl
