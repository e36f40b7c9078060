// oomguard: CLI parsing and wiring only.
#include <getopt.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "app/policy_settings.hpp"
#include "app/wiring.hpp"
#include "config/config.hpp"
#include "daemon.hpp"
#include "policy/policy.hpp"
#include "oomguard_build_config.h"
#if OOMGUARD_HAVE_DBUS
#include "bus/bus_channel.hpp"
#include "bus/bus_publisher.hpp"
#include "bus/bus_thread.hpp"
#endif

using namespace oomguard;

namespace {

void usage(FILE* out) {
    std::fprintf(out,
                 "Usage: oomguard [OPTIONS]\n"
                 "Triggers the kernel OOM killer (sysrq 'f') before the node hangs.\n\n"
                 "  --config PATH        config file (default %s)\n"
                 "  --check-config [PATH] validate the config, print the effective config, exit\n"
                 "  --dry-run            log what would be done; never write the trigger\n"
                 "  --proc-root DIR      read meminfo and pressure from DIR (overrides [paths] proc)\n"
                 "  --cgroup-root DIR    cgroup filesystem root (overrides [paths] cgroup)\n"
                 "  --log-target T       auto | journal | stderr (default auto)\n"
                 "  --log-format F       stderr lines: plain | logfmt | json (default plain);\n"
                 "                       logfmt and json are one line per entry, on stderr\n"
                 "  --no-mlock           do not lock the daemon in memory (tests, sanitizers)\n"
                 "  --no-dbus            do not offer the D-Bus API (org.oomguard1)\n"
                 "  --allow-insecure-config  accept a config not owned by root or writable by\n"
                 "                       group/others (tests only)\n"
                 "  --version            print the version\n"
                 "  --help               this text\n",
                 OOMGUARD_DEFAULT_CONFIG);
}

}  // namespace

int main(int argc, char** argv) {
    enum { OPT_CHECK = 256, OPT_DRY, OPT_PROC, OPT_CGROUP, OPT_LOG, OPT_LOGFMT, OPT_NOMLOCK, OPT_NODBUS, OPT_INSECURE,
           OPT_VERSION };
    static const option longopts[] = {
        {"config", required_argument, nullptr, 'c'},
        {"check-config", no_argument, nullptr, OPT_CHECK},
        {"dry-run", no_argument, nullptr, OPT_DRY},
        {"proc-root", required_argument, nullptr, OPT_PROC},
        {"cgroup-root", required_argument, nullptr, OPT_CGROUP},
        {"log-target", required_argument, nullptr, OPT_LOG},
        {"log-format", required_argument, nullptr, OPT_LOGFMT},
        {"no-mlock", no_argument, nullptr, OPT_NOMLOCK},
        {"no-dbus", no_argument, nullptr, OPT_NODBUS},
        {"allow-insecure-config", no_argument, nullptr, OPT_INSECURE},
        {"version", no_argument, nullptr, OPT_VERSION},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    DaemonOptions opts;
    opts.config_path = OOMGUARD_DEFAULT_CONFIG;
    bool check = false;
    bool dbus = true;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", longopts, nullptr)) != -1) {
        switch (c) {
            case 'c': opts.config_path = optarg; break;
            case OPT_CHECK: check = true; break;
            case OPT_DRY: opts.dry_run = true; break;
            case OPT_PROC: opts.proc_root = optarg; break;
            case OPT_CGROUP: opts.cgroup_root = optarg; break;
            case OPT_LOG:
                if (!std::strcmp(optarg, "auto")) opts.log_target = LogTarget::Auto;
                else if (!std::strcmp(optarg, "journal")) opts.log_target = LogTarget::Journal;
                else if (!std::strcmp(optarg, "stderr")) opts.log_target = LogTarget::Stderr;
                else {
                    std::fprintf(stderr, "oomguard: --log-target: unknown target \"%s\" (auto, journal, stderr)\n", optarg);
                    return 2;
                }
                break;
            case OPT_LOGFMT:
                if (!parse_log_format(optarg, opts.log_format)) {
                    std::fprintf(stderr,
                                 "oomguard: --log-format: unknown format \"%s\" (plain, logfmt, json)\n",
                                 optarg);
                    return 2;
                }
                break;
            case OPT_NOMLOCK: opts.mlock = false; break;
            case OPT_NODBUS: dbus = false; break;
            case OPT_INSECURE: opts.allow_insecure_config = true; break;
            case OPT_VERSION: std::printf("oomguard %s\n", OOMGUARD_VERSION); return 0;
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        if (check && optind + 1 == argc) {
            opts.config_path = argv[optind];
        } else {
            std::fprintf(stderr, "oomguard: unexpected argument \"%s\"\n", argv[optind]);
            usage(stderr);
            return 2;
        }
    }

    if (check) {
        ConfigLoad load = load_config(opts.config_path, {opts.allow_insecure_config});
        if (!load.config) {
            for (const auto& e : load.errors) std::fprintf(stderr, "%s\n", e.to_string(opts.config_path).c_str());
            std::fprintf(stderr, "oomguard: %zu error(s) in %s\n", load.errors.size(), opts.config_path.c_str());
            return 1;
        }
        // Levels against this host's MemTotal (the configured or given proc root).
        HostCheck host =
            check_against_host(*load.config, opts.proc_root.value_or(load.config->paths.proc));
        if (!host.errors.empty()) {
            for (const auto& e : host.errors)
                std::fprintf(stderr, "%s\n", e.to_string(opts.config_path).c_str());
            std::fprintf(stderr, "oomguard: %zu error(s) in %s (%s)\n", host.errors.size(),
                         opts.config_path.c_str(), host.note.c_str());
            return 1;
        }
        // The trigger is opened, never written (only a write triggers). Not an
        // error: the config may be checked on another machine, or a FIFO's reader
        // may come later.
        if (Status t = SysrqTrigger(load.config->action.sysrq_trigger).probe(); !t)
            std::fprintf(stderr, "oomguard: warning: action.sysrq_trigger: %s%s\n",
                         t.error().message.c_str(),
                         t.error().code == ENXIO ? "" : " (a trigger here would fail)");
        std::printf("# %s: OK (%s)\n", opts.config_path.c_str(), host.note.c_str());
        for (const auto& f : load.config->sources) std::printf("# read %s\n", f.c_str());
        if (host.mem_total) {
            // The levels exactly as the policy resolves them on this host.
            const Levels l = Policy(policy_settings(*load.config)).levels(host.mem_total);
            ResolvedLevels r = describe_levels(*load.config, host.mem_total, l.min, l.warn, l.recover);
            for (const auto& line : r.lines) std::printf("%s\n", line.c_str());
            for (const auto& w : r.warnings) std::fprintf(stderr, "oomguard: warning: %s\n", w.c_str());
        }
        std::printf("%s", render_config(*load.config).c_str());
        return 0;
    }

    Daemon daemon(opts);
    if (!daemon.init()) return 1;
    Components components(daemon);
#if OOMGUARD_HAVE_DBUS
    // The daemon thread's half of the D-Bus side: the publisher on the loop.
    BusChannel bus_channel;
    BusPublisher bus_publisher(daemon, bus_channel);
    bus_publisher.set_heaviest_source(&components.heaviest);
    if (dbus) components.add_adapter(bus_publisher, bus_publisher);
    // The D-Bus side runs in its own thread and only sees what the publisher
    // hands it; the loop never waits for it (see bus/bus_thread.hpp).
    BusThread bus_thread(bus_channel, daemon.clock());
    if (dbus) bus_thread.start();
    const int rc = daemon.run();
    // run() has sent STOPPING=1 and logged the stop. A bus thread stuck in a
    // blocking sd-bus call (a frozen bus daemon) must not hold the exit.
    if (!bus_thread.stop(BusThread::kStopWait)) {
        std::fflush(nullptr);
        ::_exit(rc);
    }
    return rc;
#else
    (void)dbus;
    return daemon.run();
#endif
}
