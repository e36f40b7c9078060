#include "sensors/oom_predictor.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <exception>

namespace oomguard {

OomPredictor::OomPredictor(std::string proc_root, Duration period, Duration budget,
                           const Clock& clock)
    : scanner_(std::move(proc_root), clock), period_(period), budget_(budget), clock_(clock) {}

OomPredictor::~OomPredictor() { stop(); }

void OomPredictor::start() {
    if (thread_.joinable()) return;
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = false;
    }
    thread_ = std::thread([this] { run(); });
}

void OomPredictor::stop() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void OomPredictor::set_active(bool active) {
    if (active_.exchange(active, std::memory_order_relaxed) == active) return;
    if (active) {
        std::lock_guard<std::mutex> g(mu_);  // so the wakeup cannot slip between check and wait
        cv_.notify_all();
    }
}

std::optional<Prediction> OomPredictor::try_latest() const {
    std::unique_lock<std::mutex> g(mu_, std::try_to_lock);
    if (!g.owns_lock()) return std::nullopt;
    return latest_;
}

std::optional<Prediction> OomPredictor::wait_newer(Duration after, Duration timeout) const {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait_for(g, timeout, [&] { return latest_ && latest_->at > after; });
    if (latest_ && latest_->at > after) return latest_;
    return std::nullopt;
}

void OomPredictor::post(std::function<void()> job) {
    {
        std::lock_guard<std::mutex> g(mu_);
        job_ = std::move(job);
    }
    cv_.notify_all();
}

namespace {
void notify(int fd) {
    if (fd < 0) return;
    const uint64_t one = 1;
    (void)!::write(fd, &one, sizeof one);  // an eventfd: never blocks short of 2^64
}
}  // namespace

void OomPredictor::run() {
    pthread_setname_np(pthread_self(), "oomg-predict");
    // Below the loop in CPU priority: the scan must never compete with it.
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
    std::unique_lock<std::mutex> g(mu_);
    while (!stop_) {
        cv_.wait(g, [&] { return stop_ || job_ || active_.load(std::memory_order_relaxed); });
        if (stop_) break;
        if (job_) {
            auto job = std::move(job_);
            job_ = nullptr;
            g.unlock();
            // A job's failure (a filesystem error while walking /proc or the
            // cgroup tree) must never take the daemon down with this thread.
            try {
                job();
            } catch (const std::exception&) {
            } catch (...) {
            }
            notify(notify_fd_);
            g.lock();
            continue;
        }
        g.unlock();
        Prediction p;
        Result<PredictedVictim> v = Error::logic("scan failed");
        try {
            v = scanner_.scan(budget_);
        } catch (const std::exception& e) {
            v = Error::logic(std::string("scan failed: ") + e.what());
        }
        p.at = clock_.now();
        p.stats = scanner_.stats();
        if (v.ok())
            p.victim = std::move(*v);
        else
            p.error = v.error();
        g.lock();
        latest_ = std::move(p);
        scans_.fetch_add(1, std::memory_order_relaxed);
        cv_.notify_all();
        notify(notify_fd_);
        // At most ~5 % of a core: a node with 5,000 tasks (~90 ms a scan) is
        // scanned every ~1.8 s instead of every second.
        const Duration wait = std::max<Duration>(period_, latest_->stats.took * kCostRatio);
        cv_.wait_for(g, std::chrono::duration_cast<std::chrono::nanoseconds>(wait),
                     [&] { return stop_ || job_ || !active_.load(std::memory_order_relaxed); });
    }
}

}  // namespace oomguard
