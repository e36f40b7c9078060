// How much does naming the heaviest pod cost? CgroupMonitor's refresh (rank all
// pods) and report (containers of the heaviest, names, limits) on a node of
// N pods x 4 containers, next to the physical floor: bare preads of the same
// files on fds opened beforehand, and open+pread+close of them.
//
// Trees: a fixture on tmpfs, and real cgroup v1 memory cgroups under
// /sys/fs/cgroup/memory/oomguard-test-<pid>-* (root, v1 only; removed after).
//
//   cgroup_scan_bench [--pods 110,1000] [--iterations 200] [--fixture-only]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../tests/cgroup/fixture.hpp"
#include "../tests/cgroup/real_cgroup.hpp"
#include "cgroup/cgroup_monitor.hpp"

using namespace oomguard;
using namespace oomguard::test;
using SteadyClock = std::chrono::steady_clock;  // oomguard::Clock is the daemon's

namespace {

struct Stats {
    double median_us = 0, p95_us = 0, min_us = 0;
};

Stats measure(int iterations, const std::function<void()>& fn) {
    std::vector<double> us;
    us.reserve(static_cast<size_t>(iterations));
    fn();  // warm-up
    for (int i = 0; i < iterations; ++i) {
        auto t0 = SteadyClock::now();
        fn();
        us.push_back(std::chrono::duration<double, std::micro>(SteadyClock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    return {us[us.size() / 2], us[us.size() * 95 / 100], us.front()};
}

void row(const char* what, const Stats& s) {
    std::printf("  %-44s %10.1f %10.1f %10.1f\n", what, s.median_us, s.p95_us, s.min_us);
}

// Builds the node: pod i's path (relative to the memory root) in pods[i].
struct Node {
    std::string cgroup_root;  // what CgroupMonitor is pointed at
    std::string memory_root;
    std::vector<std::string> pods;
    std::vector<std::string> containers;
    bool v1 = true;
};

void run(const char* label, const Node& n, const std::string& pod_logs, int iterations) {
    std::printf("\n%s: %zu pods x %zu containers\n", label, n.pods.size(),
                n.containers.size() / n.pods.size());
    std::printf("  %-44s %10s %10s %10s\n", "", "median us", "p95 us", "min us");
    CgroupMonitor::Settings s;
    s.cgroup_root = n.cgroup_root;
    s.pod_logs_dir = pod_logs;
    s.structure_interval = std::chrono::hours(1);

    row("first scan (configure, list, open, read)", measure(std::max(3, iterations / 20), [&] {
            CgroupMonitor m;
            (void)m.configure(s);
            m.refresh(std::chrono::seconds(10));
        }));

    CgroupMonitor m;
    if (Status st = m.configure(s); !st) {
        std::printf("  configure failed: %s\n", st.error().message.c_str());
        return;
    }
    m.refresh(std::chrono::seconds(10));
    CgroupMonitor::RefreshStats rs;
    row("refresh: rank all pods (kept fds)",
        measure(iterations, [&] { rs = m.refresh(std::chrono::seconds(10)); }));
    std::printf("  %-44s %zu usage + %zu memory.stat reads\n", "", rs.read, rs.stat_read);
    row("refresh with sweep (background: every stat)",
        measure(iterations, [&] { m.refresh(std::chrono::seconds(10), /*sweep=*/true); }));
    HeaviestReport r;
    row("report(5): + containers of heaviest, names",
        measure(iterations, [&] { r = m.report(5); }));
    row("refresh + report (what a trigger waits for)", measure(iterations, [&] {
            m.refresh(std::chrono::seconds(10));
            r = m.report(5);
        }));

    // The floor: the same two files per pod, fds opened beforehand.
    const char* usage = n.v1 ? "memory.usage_in_bytes" : "memory.current";
    std::vector<int> fds;
    for (const auto& p : n.pods)
        for (const char* f : {usage, "memory.stat"})
            fds.push_back(::open((n.memory_root + p + "/" + f).c_str(), O_RDONLY | O_CLOEXEC));
    static char buf[8192];
    row("bare pread of every pod's usage file", measure(iterations, [&] {
            for (size_t i = 0; i < fds.size(); i += 2)
                if (::pread(fds[i], buf, sizeof buf, 0) < 0) std::abort();
        }));
    row("bare pread of every pod's usage + memory.stat", measure(iterations, [&] {
            for (int fd : fds)
                if (::pread(fd, buf, sizeof buf, 0) < 0) std::abort();
        }));
    row("open+pread+close of the same files", measure(std::max(3, iterations / 4), [&] {
            for (const auto& p : n.pods)
                for (const char* f : {usage, "memory.stat"}) {
                    int fd = ::open((n.memory_root + p + "/" + f).c_str(), O_RDONLY | O_CLOEXEC);
                    if (fd < 0 || ::pread(fd, buf, sizeof buf, 0) < 0) std::abort();
                    ::close(fd);
                }
        }));
    std::vector<int> all;
    for (const auto& c : n.containers)
        for (const char* f : {usage, "memory.stat"})
            all.push_back(::open((n.memory_root + c + "/" + f).c_str(), O_RDONLY | O_CLOEXEC));
    row("bare pread of every container too (flat walk)", measure(iterations, [&] {
            for (int fd : fds) (void)!::pread(fd, buf, sizeof buf, 0);
            for (int fd : all) (void)!::pread(fd, buf, sizeof buf, 0);
        }));
    for (int fd : fds) ::close(fd);
    for (int fd : all) ::close(fd);
    if (!r.top.empty())
        std::printf("  heaviest: %s, container %s, working set %s\n",
                    r.top[0].display_name().c_str(),
                    r.containers.empty() ? "-" : r.containers[0].container_name.c_str(),
                    format_bytes(r.top[0].working_set).c_str());
}

void logs_for(const FakePodLogs& logs, unsigned pods) {
    for (unsigned i = 0; i < pods; ++i) {
        logs.pod("ns" + std::to_string(i % 10), "pod-" + std::to_string(i), pod_uid(i));
        for (unsigned c = 0; c < 4; ++c)
            logs.container("ns" + std::to_string(i % 10), "pod-" + std::to_string(i), pod_uid(i),
                           "c" + std::to_string(c), container_id(i * 4 + c));
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<unsigned> sizes = {110, 1000};
    int iterations = 200;
    bool fixture_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--pods" && i + 1 < argc) {
            sizes.clear();
            for (char* t = std::strtok(argv[++i], ","); t; t = std::strtok(nullptr, ","))
                sizes.push_back(static_cast<unsigned>(std::atoi(t)));
        } else if (a == "--iterations" && i + 1 < argc) {
            iterations = std::max(5, std::atoi(argv[++i]));
        } else if (a == "--fixture-only") {
            fixture_only = true;
        } else {
            std::fprintf(stderr, "usage: %s [--pods 110,1000] [--iterations N] [--fixture-only]\n",
                         argv[0]);
            return 2;
        }
    }
    const std::string real_why = real_cgroups_unavailable();
    for (unsigned pods : sizes) {
        TempDir tmp;
        FakePodLogs logs(tmp / "log");
        logs_for(logs, pods);
        KubeLayout L{CgroupDriver::Cgroupfs, Runtime::Containerd};
        const QosClass qos[] = {QosClass::Guaranteed, QosClass::Burstable, QosClass::BestEffort};
        {
            FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
            Node n;
            n.cgroup_root = fs.root();
            n.memory_root = fs.memory_root();
            n.v1 = false;
            fs.cgroup(L.kubepods(), 0);
            for (QosClass q : {QosClass::Burstable, QosClass::BestEffort})
                fs.cgroup(L.qos_dir(q), 0);
            for (unsigned i = 0; i < pods; ++i) {
                std::string dir = L.pod_dir(qos[i % 3], pod_uid(i));
                fs.cgroup(dir, (10 + (i * 37) % 500 + (i == pods / 2 ? 4000 : 0)) * MiB, 5 * MiB);
                n.pods.push_back("/" + dir);
                for (unsigned c = 0; c < 4; ++c) {
                    std::string cd = dir + "/" + L.container_name(container_id(i * 4 + c));
                    fs.cgroup(cd, (c + 1) * MiB);
                    n.containers.push_back("/" + cd);
                }
            }
            run("fixture (tmpfs, v2 files)", n, logs.pods_dir(), iterations);
        }
        if (fixture_only) continue;
        if (!real_why.empty()) {
            std::printf("\nreal cgroups skipped: %s\n", real_why.c_str());
            continue;
        }
        RealCgroupTree t;
        Node n;
        n.cgroup_root = t.parent();
        n.memory_root = t.parent();
        n.v1 = true;
        for (unsigned i = 0; i < pods; ++i) {
            std::string q = i % 3 == 0 ? "" : i % 3 == 1 ? "burstable/" : "besteffort/";
            std::string dir = "kubepods/" + q + "pod" + pod_uid(i);
            n.pods.push_back("/" + dir);
            for (unsigned c = 0; c < 4; ++c) {
                std::string cd = dir + "/" + container_id(i * 4 + c);
                t.make(cd);
                n.containers.push_back("/" + cd);
            }
        }
        // One real process so there is a heaviest pod to find.
        unsigned heavy = pods / 2;
        if (t.spawn(n.containers[heavy * 4 + 2].substr(1), 32 * MiB) < 0)
            std::printf("spawn failed\n");
        run("real cgroup v1 memory cgroups", n, logs.pods_dir(), iterations);
        std::printf("  expected heaviest: ns%u/pod-%u, container c2\n", heavy % 10, heavy);
    }
    return 0;
}
