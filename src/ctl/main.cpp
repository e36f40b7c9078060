// oomguardctl: asks the running oomguard daemon over D-Bus (org.oomguard1).
#include <getopt.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ctl/manager_client.hpp"
#include "oomguard_build_config.h"
#include "util/units.hpp"

using namespace oomguard;
using namespace oomguard::ctl;

namespace {

void usage(FILE* out) {
    std::fprintf(
        out,
        "Usage: oomguardctl [OPTIONS] COMMAND\n"
        "Shows what the oomguard daemon sees, over D-Bus (org.oomguard1 on the system bus).\n"
        "\n"
        "Commands:\n"
        "  status           state, MemAvailable against the threshold, triggers, the last\n"
        "                   trigger and victim, the top 3 pods (the default command)\n"
        "  top [-n N]       the N heaviest pods and containers (default 10, 0..1000)\n"
        "  monitor          print the daemon's signals as they come, until Ctrl-C\n"
        "  dump             the daemon's full state and effective config\n"
        "  reload           reload the daemon's config file (root only)\n"
        "\n"
        "Options:\n"
        "  --json           machine-readable output (status, top)\n"
        "  -n, --count N    rows for top\n"
        "  --version        print the version\n"
        "  -h, --help       this text\n"
        "\n"
        "The system bus is $DBUS_SYSTEM_BUS_ADDRESS, else %s.\n"
        "\n"
        "Exit status:\n"
        "  %d  success\n"
        "  %d  the daemon answered with an error (e.g. reload of a broken config)\n"
        "  %d  bad command line\n"
        "  %d  oomguard is not running (org.oomguard1 has no owner on the bus)\n"
        "  %d  access denied (reload needs root)\n"
        "  %d  cannot connect to the system bus\n"
        "  %d  oomguard did not answer in time\n",
        "unix:path=/run/dbus/system_bus_socket", kExitOk, kExitFailed, kExitUsage, kExitNotRunning,
        kExitDenied, kExitNoBus, kExitNoReply);
}

uint64_t now_usec() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

std::string stamp() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    localtime_r(&ts.tv_sec, &t);
    char buf[48];
    size_t n = strftime(buf, sizeof buf, "%H:%M:%S", &t);
    std::snprintf(buf + n, sizeof buf - n, ".%03ld", ts.tv_nsec / 1000000);
    return buf;
}

std::string who(const std::string& ns, const std::string& pod, const std::string& cgroup) {
    std::string s;
    if (!pod.empty()) s = (ns.empty() ? "-" : ns) + "/" + pod;
    if (!cgroup.empty()) s += (s.empty() ? "" : " ") + std::string("(cgroup ") + cgroup + ")";
    return s.empty() ? "unknown" : s;
}

int run_monitor(ManagerClient& c) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    MonitorHandlers h;
    h.warning = [](uint64_t avail, uint64_t thr) {
        std::printf("%s Warning: MemAvailable %s is below the warning level %s\n", stamp().c_str(),
                    format_bytes(avail).c_str(), format_bytes(thr).c_str());
    };
    h.triggered = [](uint64_t avail, const std::string& cg, const std::string& ns,
                     const std::string& pod, const std::string& action) {
        std::printf("%s Triggered: %s at MemAvailable %s; heaviest: %s\n", stamp().c_str(),
                    action.c_str(), format_bytes(avail).c_str(), who(ns, pod, cg).c_str());
    };
    h.victim = [](uint32_t pid, const std::string& name, const std::string& cg,
                  const std::string& ns, const std::string& pod) {
        std::printf("%s Victim: the kernel killed pid %u (%s) in %s\n", stamp().c_str(), pid,
                    name.c_str(), who(ns, pod, cg).c_str());
    };
    h.recovered = [](uint64_t avail, uint64_t usec) {
        std::printf("%s Recovered: MemAvailable %s after %s\n", stamp().c_str(),
                    format_bytes(avail).c_str(),
                    format_duration(std::chrono::microseconds(usec)).c_str());
    };
    h.properties = [](const std::map<std::string, sdbus::Variant>& changed) {
        if (auto it = changed.find("State"); it != changed.end())
            std::printf("%s State: %s\n", stamp().c_str(), it->second.get<std::string>().c_str());
        if (auto it = changed.find("LastError");
            it != changed.end() && !it->second.get<std::string>().empty())
            std::printf("%s Error: %s\n", stamp().c_str(), it->second.get<std::string>().c_str());
    };
    h.owner = [](bool running) {
        std::printf("%s %s\n", stamp().c_str(),
                    running ? "oomguard appeared on the bus" : "oomguard left the bus");
    };
    if (!c.running())
        std::fprintf(stderr, "oomguardctl: oomguard is not running; waiting for it\n");
    std::fprintf(stderr, "oomguardctl: following oomguard's signals; Ctrl-C to stop\n");
    return c.monitor(h);
}

}  // namespace

int main(int argc, char** argv) {
    enum { OPT_JSON = 256, OPT_VERSION };
    static const option longopts[] = {
        {"json", no_argument, nullptr, OPT_JSON},
        {"count", required_argument, nullptr, 'n'},
        {"version", no_argument, nullptr, OPT_VERSION},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    bool json = false;
    long count = 10;
    int c;
    // GNU getopt permutes: options may come before or after the command (`top -n 5 --json`).
    while ((c = getopt_long(argc, argv, "n:h", longopts, nullptr)) != -1) {
        switch (c) {
            case OPT_JSON:
                json = true;
                break;
            case 'n': {
                char* end = nullptr;
                errno = 0;
                count = std::strtol(optarg, &end, 10);
                if (errno || end == optarg || *end || count < 0 || count > 1000) {
                    std::fprintf(stderr,
                                 "oomguardctl: -n: expected a number from 0 to 1000, got \"%s\"\n",
                                 optarg);
                    return kExitUsage;
                }
                break;
            }
            case OPT_VERSION:
                std::printf("oomguardctl %s\n", OOMGUARD_VERSION);
                return kExitOk;
            case 'h':
                usage(stdout);
                return kExitOk;
            default:
                usage(stderr);
                return kExitUsage;
        }
    }
    const std::string cmd = optind < argc ? argv[optind++] : "status";
    if (optind < argc) {
        std::fprintf(stderr, "oomguardctl: unexpected argument \"%s\"\n", argv[optind]);
        return kExitUsage;
    }
    const bool known =
        cmd == "status" || cmd == "top" || cmd == "monitor" || cmd == "dump" || cmd == "reload";
    if (!known) {
        std::fprintf(stderr,
                     "oomguardctl: unknown command \"%s\" (status, top, monitor, dump, reload)\n",
                     cmd.c_str());
        return kExitUsage;
    }
    if (json && cmd != "status" && cmd != "top") {
        std::fprintf(stderr, "oomguardctl: --json applies to status and top only\n");
        return kExitUsage;
    }

    try {
        ManagerClient client;
        if (cmd == "status") {
            StatusReport r = client.status();
            std::fputs(
                json ? render_status_json(r).c_str() : render_status_text(r, now_usec()).c_str(),
                stdout);
        } else if (cmd == "top") {
            auto rows = client.heaviest(static_cast<uint32_t>(count));
            std::fputs(json ? render_top_json(rows).c_str() : render_top_text(rows).c_str(),
                       stdout);
        } else if (cmd == "dump") {
            std::string d = client.dump();
            std::fputs(d.c_str(), stdout);
            if (!d.empty() && d.back() != '\n') std::fputc('\n', stdout);
        } else if (cmd == "reload") {
            client.reload();
            std::printf("oomguard reloaded its config\n");
        } else {
            return run_monitor(client);
        }
        return kExitOk;
    } catch (const CtlFailure& f) {
        std::string hint =
            f.exit_code == kExitDenied && cmd == "reload" ? " (reload needs root)" : "";
        std::fprintf(stderr, "oomguardctl: %s: %s%s\n", cmd.c_str(), f.message.c_str(),
                     hint.c_str());
        return f.exit_code;
    }
}
