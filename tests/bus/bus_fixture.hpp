// Fixture for the D-Bus tests: a private dbus-daemon whose config includes the
// shipped policy (packaging/dbus/org.oomguard1.conf), the real oomguard against
// a fake proc root and a trigger FIFO (tests/support), a client
// through the generated proxy, and runners for busctl and oomguardctl (also as
// the unprivileged user nobody). Never the real /proc/sysrq-trigger.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "manager_proxy.h"
#include "sdbus_compat.hpp"
#include "support/support.hpp"

namespace oomguard::bustest {

using namespace oomguard::test;
// The tests' wall clock (support/rig_io.hpp), not the daemon's oomguard::Clock.
using Clock = oomguard::test::Clock;
using namespace std::chrono_literals;

std::string source_dir();
std::string ctl_binary();  // $OOMGUARD_CTL_BIN
bool have_program(const std::string& name);
// Why the D-Bus tests cannot run here, or "" when they can.
std::string missing_prerequisite(bool needs_root = false);

// In a test body: skip, saying why, when a prerequisite is missing.
#define SKIP_UNLESS_READY(root)                                        \
    do {                                                               \
        std::string why = ::oomguard::bustest::missing_prerequisite(root); \
        if (!why.empty()) GTEST_SKIP() << why;                         \
    } while (0)

std::string trim(std::string s);

enum class BusPolicy {
    Shipped,     // Debian's system.conf defaults + the shipped org.oomguard1.conf
    Permissive,  // anyone may call anything on org.oomguard1 (tests the handler's own uid check)
};

// dbus-daemon --nofork with a test config listening on <dir>/bus.sock.
class PrivateBus {
public:
    PrivateBus(const std::string& dir, BusPolicy policy);
    ~PrivateBus();
    void start();
    // SIGKILL: the socket file stays behind, as after a crash.
    void kill();
    // SIGSTOP/SIGCONT: a bus daemon that is alive but does not answer.
    void freeze();
    void thaw();
    bool running() const { return proc_.has_value(); }
    // Without the guid, so that it names the restarted bus too.
    std::string address() const { return "unix:path=" + socket_; }
    const std::string& socket() const { return socket_; }
    const std::string& log_path() const { return log_; }

private:
    std::string dir_, config_, socket_, log_;
    std::optional<Process> proc_;  // dbus-daemon, while it runs
};

// The test's client: the generated proxy, recording every signal.
class ManagerProxy final
    : public sdbus::ProxyInterfaces<org::oomguard1::Manager_proxy, sdbus::Properties_proxy,
                                    sdbus::Introspectable_proxy> {
public:
    struct Signal {
        std::string name;
        std::vector<std::string> args;  // each argument as text
        Clock::time_point at;
    };
    struct Change {
        std::map<std::string, sdbus::Variant> values;
        Clock::time_point at;
    };
    explicit ManagerProxy(sdbus::IConnection& c);
    ~ManagerProxy();
    std::vector<Signal> signals;
    std::vector<Change> changes;

    size_t count(const std::string& signal) const;
    const Signal* last(const std::string& signal) const;
    // PropertiesChanged messages that carried `property`.
    size_t changes_of(const std::string& property) const;

private:
    void onWarning(const uint64_t& available, const uint64_t& threshold) override;
    void onTriggered(const uint64_t& available, const std::string& cgroup, const std::string& ns,
                     const std::string& pod, const std::string& action) override;
    void onVictim(const uint32_t& pid, const std::string& name, const std::string& cgroup,
                  const std::string& ns, const std::string& pod) override;
    void onRecovered(const uint64_t& available, const uint64_t& duration_usec) override;
    void onPropertiesChanged(const std::string& interface,
                             const std::map<std::string, sdbus::Variant>& changed,
                             const std::vector<std::string>& invalidated) override;
};

// A connection to the bus named by $DBUS_SYSTEM_BUS_ADDRESS, pumped by the test.
class BusClient {
public:
    BusClient();
    ~BusClient();
    ManagerProxy& proxy() { return *proxy_; }
    sdbus::IConnection& connection() { return *conn_; }
    // Processes incoming messages for `d`.
    void pump(std::chrono::milliseconds d);
    bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout);
    bool wait_signal(const std::string& name, std::chrono::milliseconds timeout, size_t count = 1);
    bool name_owned();

private:
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<ManagerProxy> proxy_;
};

// True once org.oomguard1 is (or is no longer) owned on the bus at $DBUS_SYSTEM_BUS_ADDRESS.
bool wait_name(bool owned, std::chrono::milliseconds timeout);

// Everything one test needs. Sets $DBUS_SYSTEM_BUS_ADDRESS for the test process
// and every child to the private bus.
struct BusRig {
    explicit BusRig(BusPolicy policy = BusPolicy::Shipped, bool start_bus = true);
    ~BusRig();

    TempDir dir;
    PrivateBus bus;
    FakeProc proc;
    TriggerFifo fifo;
    NotifySocket notify;
    RigPaths paths;        // an empty fake cgroup root, kmsg and lock of its own
    DaemonProcess daemon;  // the real oomguard
    std::string config_path;
    std::atomic<bool> stop_drain{false};
    std::thread notify_drain;

    // A config with the FIFO as trigger, fast polling, warn/recover levels, extras appended.
    std::string config(const std::string& memory = "", const std::string& extra = "") const;
    void write_config(const std::string& toml);
    // Starts oomguard with the current config; waits for READY and (if asked) the bus name.
    void start_daemon(const std::vector<std::string>& extra_args = {}, bool wait_for_name = true);
    // After READY: keeps receiving on the NOTIFY_SOCKET in the background. A
    // full datagram queue would block the daemon's sd_notify() and throttle it.
    void drain_notify();
    std::map<std::string, std::string> env() const;

    RunResult busctl(const std::vector<std::string>& args, bool nobody = false) const;
    // busctl get-property org.oomguard1 /org/oomguard1 org.oomguard1.Manager NAME
    std::string busctl_property(const std::string& name, bool nobody = false) const;
    RunResult ctl(const std::vector<std::string>& args, bool nobody = false) const;
};

// Flattens JSON to "path=value" lines with python3 (values JSON-encoded:
// strings quoted, null, true/false, numbers); arrays also give "path#len=N".
std::map<std::string, std::string> flatten_json(const std::string& json);

// Crossing latency, for the tests that time the trigger against a bus that
// stalls or is flooded (issue 10's target: 5 ms in the normal build).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr auto kMedianBound = std::chrono::milliseconds(50);  // sanitizers slow everything
#else
inline constexpr auto kMedianBound = std::chrono::milliseconds(5);
#endif

template <typename D>
double as_ms(D d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// `n` crossings from well above the recovery level to below the threshold,
// waiting `rearm` above it first so the episode ends and the trigger re-arms;
// the latency of each, from the meminfo write to the 'f' in the FIFO (1e9: none).
inline std::vector<double> crossing_latencies(BusRig& r, int n, std::chrono::milliseconds rearm) {
    std::vector<double> lat;
    for (int i = 0; i < n; ++i) {
        r.proc.set_available(4096ull << 20);
        std::this_thread::sleep_for(rearm);
        r.fifo.drain();
        const auto t0 = std::chrono::steady_clock::now();
        r.proc.set_available(400ull << 20);
        auto got = r.fifo.wait_byte(std::chrono::seconds(2));
        lat.push_back(got ? as_ms(*got - t0) : 1e9);
    }
    r.proc.set_available(4096ull << 20);
    return lat;
}

}  // namespace oomguard::bustest
