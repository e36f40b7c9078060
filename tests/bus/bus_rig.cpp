// oomguard_bus_rig: the daemon wired exactly as src/main.cpp wires it (BusPublisher,
// BusThread, MetricsWriter), plus stand-ins for what the cgroup code provides: a
// HeaviestSource read from a TSV file, and OOM victims read from a FIFO and
// recorded with Daemon::record_oom_kill (as the kmsg reader does). Lets the tests exercise
// GetHeaviest, the Triggered target, the Victim signal and the pod metrics before that code lands.
//
// Usage: oomguard_bus_rig CONFIG PROC_ROOT HEAVIEST_TSV VICTIM_FIFO
//   HEAVIEST_TSV: one row per line: cgroup ns pod container qos working_set limit (tab-separated)
//   VICTIM_FIFO lines: pid name cgroup ns pod (tab-separated)
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "bus/bus_publisher.hpp"
#include "bus/bus_thread.hpp"
#include "core/clock.hpp"
#include "daemon.hpp"
#include "service/metrics.hpp"

using namespace oomguard;

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, '\t')) f.push_back(x);
    return f;
}

class FileHeaviestSource final : public HeaviestSource {
public:
    explicit FileHeaviestSource(std::string path) : path_(std::move(path)) {}
    std::vector<HeaviestRow> heaviest(size_t max) override {
        std::vector<HeaviestRow> rows;
        std::ifstream in(path_);
        std::string line;
        while (rows.size() < max && std::getline(in, line)) {
            auto f = split_tabs(line);
            if (f.size() != 7) continue;
            rows.push_back({f[0], f[1], f[2], f[3], f[4], std::stoull(f[5]), std::stoull(f[6])});
        }
        return rows;
    }
    // A new ranking whenever the file changes.
    uint64_t generation() const override {
        struct stat st;
        if (::stat(path_.c_str(), &st) != 0) return 0;
        return static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000u +
               static_cast<uint64_t>(st.st_mtim.tv_nsec) + static_cast<uint64_t>(st.st_size);
    }
    std::optional<HeaviestRow> last_trigger_target() override {
        auto rows = heaviest(1);
        if (rows.empty()) return std::nullopt;
        return rows[0];
    }

private:
    std::string path_;
};

class VictimFifo final : public LoopSource {
public:
    VictimFifo(const std::string& path, Daemon& daemon) : daemon_(daemon) {
        // O_RDWR: never sees EOF when a writer closes.
        fd_ = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    }
    ~VictimFifo() override {
        if (fd_ >= 0) ::close(fd_);
    }
    Spec poll_spec() override { return {fd_, POLLIN, -1}; }
    void dispatch(short revents) override {
        if (!(revents & POLLIN)) return;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fd_, buf, sizeof buf)) > 0) pending_.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = pending_.find('\n')) != std::string::npos) {
            auto f = split_tabs(pending_.substr(0, nl));
            pending_.erase(0, nl + 1);
            if (f.size() != 5) continue;
            OomKill k;
            k.realtime_usec = realtime_usec();
            k.pid = std::stol(f[0]);
            k.task = f[1];
            k.cgroup.path = f[2];
            k.cgroup.pod_namespace = f[3];
            k.cgroup.pod_name = f[4];
            daemon_.record_oom_kill(k);
        }
    }

private:
    Daemon& daemon_;
    int fd_ = -1;
    std::string pending_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s CONFIG PROC_ROOT HEAVIEST_TSV VICTIM_FIFO\n", argv[0]);
        return 2;
    }
    DaemonOptions opts;
    opts.config_path = argv[1];
    opts.proc_root = argv[2];
    opts.log_target = LogTarget::Stderr;
    opts.mlock = false;
    Daemon daemon(opts);
    if (!daemon.init()) return 1;
    FileHeaviestSource heaviest(argv[3]);

    // As in src/main.cpp, plus the two stand-ins.
    MetricsWriter metrics(daemon.journal(), daemon.config().metrics);
    metrics.set_heaviest_source(&heaviest);
    daemon.add_sink(&metrics);
    BusChannel channel;
    BusPublisher publisher(daemon, channel);
    publisher.set_heaviest_source(&heaviest);
    BusThread bus(channel);
    daemon.add_source(&publisher);
    daemon.add_sink(&publisher);
    bus.start();
    VictimFifo victims(argv[4], daemon);
    daemon.add_source(&victims);
    const int rc = daemon.run();
    if (!bus.stop(BusThread::kStopWait)) {
        std::fflush(nullptr);
        ::_exit(rc);
    }
    return rc;
}
