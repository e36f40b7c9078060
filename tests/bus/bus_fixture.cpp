#include "bus_fixture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace oomguard::bustest {

std::string source_dir() { return OOMGUARD_SOURCE_DIR; }

std::string ctl_binary() {
    if (const char* b = std::getenv("OOMGUARD_CTL_BIN")) return b;
    return "build/src/ctl/oomguardctl";
}

bool have_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(ss, dir, ':'))
        if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    return false;
}

std::string missing_prerequisite(bool needs_root) {
    for (const char* p : {"dbus-daemon", "busctl", "python3"})
        if (!have_program(p))
            return std::string(p) + " is not installed (tools/deps.sh installs it)";
    if (needs_root) {
        if (::geteuid() != 0) return "acting as the user nobody needs root (setpriv --reuid)";
        if (!have_program("setpriv")) return "setpriv (util-linux) is not installed";
    }
    return "";
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
    size_t i = 0;
    while (i < s.size() && s[i] == ' ') ++i;
    return s.substr(i);
}

// ---- PrivateBus -------------------------------------------------------------

PrivateBus::PrivateBus(const std::string& dir, BusPolicy policy)
    : dir_(dir),
      config_(dir + "/bus.conf"),
      socket_(dir + "/bus.sock"),
      log_(dir + "/dbus-daemon.log") {
    // Debian's system.conf defaults (closed for method calls), so that only the
    // policy under test opens anything.
    std::string conf =
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>system</type>\n"
        "  <listen>unix:path=" +
        socket_ +
        "</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow user=\"*\"/>\n"
        "    <deny own=\"*\"/>\n"
        "    <deny send_type=\"method_call\"/>\n"
        "    <allow send_type=\"signal\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
        "    <allow receive_type=\"method_call\"/>\n"
        "    <allow receive_type=\"method_return\"/>\n"
        "    <allow receive_type=\"error\"/>\n"
        "    <allow receive_type=\"signal\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" "
        "send_interface=\"org.freedesktop.DBus\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" "
        "send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" "
        "send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
        "  </policy>\n"
        "  <policy user=\"root\">\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" "
        "send_interface=\"org.freedesktop.DBus.Monitoring\"/>\n"
        "  </policy>\n";
    if (policy == BusPolicy::Shipped) {
        conf += "  <include>" + source_dir() + "/packaging/dbus/org.oomguard1.conf</include>\n";
    } else {
        conf +=
            "  <policy user=\"root\"><allow own=\"org.oomguard1\"/></policy>\n"
            "  <policy context=\"default\"><allow send_destination=\"org.oomguard1\"/></policy>\n";
    }
    conf += "</busconfig>\n";
    write_file(config_, conf);
}

PrivateBus::~PrivateBus() { kill(); }

void PrivateBus::start() {
    if (proc_) return;
    proc_.emplace();
    proc_->start({"dbus-daemon", "--config-file=" + config_, "--print-address", "--nofork"}, {}, "",
                 log_);
    // The address is printed once the socket listens.
    if (!proc_->wait_out("unix:path=" + socket_, 5s))
        throw std::runtime_error("dbus-daemon did not start: " + read_file(log_));
    // Callers acting as nobody must reach the socket.
    ::chmod(socket_.c_str(), 0777);
}

void PrivateBus::kill() {
    if (!proc_) return;
    proc_->signal(SIGKILL);
    proc_->signal(SIGCONT);
    proc_->wait_exit(5s);
    proc_.reset();
}

void PrivateBus::freeze() {
    if (proc_) proc_->signal(SIGSTOP);
}

void PrivateBus::thaw() {
    if (proc_) proc_->signal(SIGCONT);
}

// ---- ManagerProxy / BusClient -------------------------------------------------

ManagerProxy::ManagerProxy(sdbus::IConnection& c)
    : ProxyInterfaces(c, dbus::service_name(dbus::kBusName), dbus::object_path(dbus::kObjectPath)) {
    registerProxy();
}

ManagerProxy::~ManagerProxy() { unregisterProxy(); }

size_t ManagerProxy::count(const std::string& signal) const {
    size_t n = 0;
    for (const auto& s : signals) n += s.name == signal;
    return n;
}

const ManagerProxy::Signal* ManagerProxy::last(const std::string& signal) const {
    for (auto it = signals.rbegin(); it != signals.rend(); ++it)
        if (it->name == signal) return &*it;
    return nullptr;
}

size_t ManagerProxy::changes_of(const std::string& property) const {
    size_t n = 0;
    for (const auto& c : changes) n += c.values.count(property);
    return n;
}

void ManagerProxy::onWarning(const uint64_t& available, const uint64_t& threshold) {
    signals.push_back(
        {"Warning", {std::to_string(available), std::to_string(threshold)}, Clock::now()});
}

void ManagerProxy::onTriggered(const uint64_t& available, const std::string& cgroup,
                               const std::string& ns, const std::string& pod,
                               const std::string& action) {
    signals.push_back(
        {"Triggered", {std::to_string(available), cgroup, ns, pod, action}, Clock::now()});
}

void ManagerProxy::onVictim(const uint32_t& pid, const std::string& name, const std::string& cgroup,
                            const std::string& ns, const std::string& pod) {
    signals.push_back({"Victim", {std::to_string(pid), name, cgroup, ns, pod}, Clock::now()});
}

void ManagerProxy::onRecovered(const uint64_t& available, const uint64_t& duration_usec) {
    signals.push_back(
        {"Recovered", {std::to_string(available), std::to_string(duration_usec)}, Clock::now()});
}

void ManagerProxy::onPropertiesChanged(const std::string& interface,
                                       const std::map<std::string, sdbus::Variant>& changed,
                                       const std::vector<std::string>&) {
    if (interface == dbus::kInterface) changes.push_back({changed, Clock::now()});
}

BusClient::BusClient() {
    conn_ = dbus::open_system_bus();
    dbus::set_call_timeout(*conn_, 5s);
    proxy_ = std::make_unique<ManagerProxy>(*conn_);
}

BusClient::~BusClient() {
    proxy_.reset();
    conn_.reset();
}

void BusClient::pump(std::chrono::milliseconds d) {
    auto deadline = Clock::now() + d;
    for (;;) {
        while (conn_->processPendingRequest()) {
        }
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return;
        dbus::PollSpec p = dbus::poll_spec(*conn_);
        int t = static_cast<int>(left);
        if (p.timeout_ns >= 0)
            t = std::min<int>(t, static_cast<int>((p.timeout_ns + 999'999) / 1'000'000));
        pollfd f{p.fd, p.events, 0};
        ::poll(&f, 1, t);
    }
}

bool BusClient::wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() >= deadline) return false;
        pump(10ms);
    }
    return true;
}

bool BusClient::wait_signal(const std::string& name, std::chrono::milliseconds timeout,
                            size_t count) {
    return wait_for([&] { return proxy_->count(name) >= count; }, timeout);
}

bool BusClient::name_owned() { return dbus::name_has_owner(*conn_, dbus::kBusName); }

bool wait_name(bool owned, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    do {
        try {
            auto c = dbus::open_system_bus();
            if (dbus::name_has_owner(*c, dbus::kBusName) == owned) return true;
        } catch (const sdbus::Error&) {
            if (!owned) return true;  // no bus: certainly nobody owns the name
        }
        std::this_thread::sleep_for(20ms);
    } while (Clock::now() < deadline);
    return false;
}

// ---- BusRig -----------------------------------------------------------------

BusRig::BusRig(BusPolicy policy, bool start_bus)
    : bus(dir.path(), policy),
      proc(dir.file("proc"), 16384 * MiB),
      fifo(dir.file("trigger.fifo")),
      notify(dir.file("notify.sock")),
      paths(dir.path()),
      config_path(dir.file("oomguard.toml")) {
    // nobody must reach the bus socket inside.
    ::chmod(dir.path().c_str(), 0755);
    ::setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address().c_str(), 1);
    proc.set_available(4096 * MiB);
    write_config(config());
    if (start_bus) bus.start();
}

BusRig::~BusRig() {
    // Stop the daemon first: its STOPPING=1 must not find a full notify queue.
    if (daemon.running()) {
        daemon.signal(SIGTERM);
        daemon.wait_exit(3s);
    }
    stop_drain = true;
    if (notify_drain.joinable()) notify_drain.join();
}

std::string BusRig::config(const std::string& memory, const std::string& extra) const {
    return "[memory]\nmin_available = \"500MiB\"\nwarn_available = \"1000MiB\"\nrecover_available "
           "= \"2000MiB\"\n" +
           memory + "\n[action]\nsysrq_trigger = \"" + fifo.path() +
           "\"\nrepeat_after = \"10s\"\n" +
           "\n[poll]\nmin_interval = \"1ms\"\nmax_interval = \"50ms\"\npsi = false\n"
           "\n[kubernetes]\nlog_heaviest = false\n" +
           extra;
}

// With the rig's kmsg and lock unless the text names its own.
void BusRig::write_config(const std::string& toml) { write_file(config_path, paths.apply(toml)); }

std::map<std::string, std::string> BusRig::env() const {
    return {{"DBUS_SYSTEM_BUS_ADDRESS", bus.address()}};
}

void BusRig::start_daemon(const std::vector<std::string>& extra_args, bool wait_for_name) {
    // The rig's cgroup root (empty unless the test built a tree there): the
    // host's cgroups must not leak into the answers these tests check.
    std::vector<std::string> args = paths.daemon_args(config_path, proc.dir());
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto e = env();
    e["NOTIFY_SOCKET"] = notify.path();
    daemon.start(args, e, dir.file("daemon.log"));
    if (!notify.wait_for("READY=1", 5s))
        throw std::runtime_error("oomguard not READY:\n" + daemon.log());
    drain_notify();
    if (wait_for_name && !wait_name(true, 5s))
        throw std::runtime_error("org.oomguard1 not registered:\n" + daemon.log());
}

void BusRig::drain_notify() {
    if (notify_drain.joinable()) return;
    notify_drain = std::thread([this] {
        while (!stop_drain) notify.pump(20ms);
    });
}

RunResult BusRig::busctl(const std::vector<std::string>& args, bool nobody) const {
    std::vector<std::string> argv = {"busctl", "--address=" + bus.address(), "--no-pager"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(nobody ? as_nobody(argv) : argv, env());
}

std::string BusRig::busctl_property(const std::string& name, bool nobody) const {
    RunResult r =
        busctl({"get-property", dbus::kBusName, dbus::kObjectPath, dbus::kInterface, name}, nobody);
    if (r.exit_code != 0) return "ERROR(" + std::to_string(r.exit_code) + "): " + r.err;
    return trim(r.out);
}

RunResult BusRig::ctl(const std::vector<std::string>& args, bool nobody) const {
    std::vector<std::string> argv = {ctl_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(nobody ? as_nobody(argv) : argv, env());
}

std::map<std::string, std::string> flatten_json(const std::string& json) {
    char path[] = "/tmp/oomguard-json-XXXXXX";
    int fd = ::mkstemp(path);
    if (fd < 0) throw std::runtime_error("mkstemp");
    ::close(fd);
    write_file(path, json);
    static const char* script =
        "import json,sys\n"
        "def walk(p,v):\n"
        "    if isinstance(v,dict):\n"
        "        for k,x in v.items(): walk(p+'.'+k if p else k, x)\n"
        "    elif isinstance(v,list):\n"
        "        print(p+'#len='+str(len(v)))\n"
        "        for i,x in enumerate(v): walk(p+'['+str(i)+']', x)\n"
        "    else: print(p+'='+json.dumps(v))\n"
        "walk('', json.load(open(sys.argv[1])))\n";
    RunResult r = run({"python3", "-c", script, path});
    ::unlink(path);
    std::map<std::string, std::string> out;
    if (r.exit_code != 0) {
        out["__error__"] = r.err;
        return out;
    }
    std::stringstream ss(r.out);
    std::string line;
    while (std::getline(ss, line)) {
        size_t eq = line.find('=');
        if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
}

}  // namespace oomguard::bustest
