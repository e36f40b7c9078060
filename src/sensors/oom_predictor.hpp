// OomPredictor keeps the kernel's likely OOM victim fresh without touching the
// poll loop: a thread of its own scans /proc (OomScoreScanner, ~20 µs a task)
// every `period` (or 20 times the scan's duration, if longer) while the daemon
// says memory is near the threshold, and
// publishes the result. The loop only reads the latest result with try_lock,
// so a slow /proc (thousands of tasks, a stalled task lock) delays the
// prediction, never the trigger. Idle cost above the warning level: none (the
// thread sleeps on a condition variable). It also runs posted jobs (the audit).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/clock.hpp"
#include "util/result.hpp"
#include "sensors/oom_score.hpp"

namespace oomguard {

struct Prediction {
    PredictedVictim victim;  // pid 0: no killable task seen
    Duration at{0};          // monotonic time of the scan
    OomScanStats stats;
    std::optional<Error> error;  // why the last scan failed (nullopt: it worked)
};

class OomPredictor {
public:
    OomPredictor(std::string proc_root, Duration period, Duration budget,
                 const Clock& clock = monotonic_clock());
    ~OomPredictor();
    OomPredictor(const OomPredictor&) = delete;
    OomPredictor& operator=(const OomPredictor&) = delete;

    // The pause after a scan is at least this many times the scan's duration.
    static constexpr int kCostRatio = 20;

    void start();
    void stop();
    // Scans run while active; becoming active scans at once.
    void set_active(bool active);
    bool active() const { return active_.load(std::memory_order_relaxed); }
    // The latest prediction, if the lock is free and a scan finished; never blocks.
    std::optional<Prediction> try_latest() const;
    // Blocks until a scan newer than `after` is published or `timeout` passes
    // (tests and the node audit, not the loop).
    std::optional<Prediction> wait_newer(Duration after, Duration timeout) const;
    uint64_t scans() const { return scans_.load(std::memory_order_relaxed); }
    // Written (8 bytes, an eventfd) after each published scan and each job, so
    // the loop can poll it. Set before start().
    void set_notify_fd(int fd) { notify_fd_ = fd; }
    // Runs `job` once in the predictor's thread, before its next scan (the node
    // audit: slow /proc work that must stay off the loop). A job posted while
    // one is pending replaces it.
    void post(std::function<void()> job);

private:
    void run();

    OomScoreScanner scanner_;
    const Duration period_, budget_;
    const Clock& clock_;
    std::atomic<bool> active_{false};
    std::atomic<uint64_t> scans_{0};
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    bool stop_ = false;
    std::optional<Prediction> latest_;
    std::function<void()> job_;
    int notify_fd_ = -1;
    std::thread thread_;
};

}  // namespace oomguard
