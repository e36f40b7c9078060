// PSI trigger on <proc>/pressure/memory: the kernel wakes us (POLLPRI) when
// memory stalls exceed a threshold within a window, so the loop samples at once.
#pragma once

#include <string>

#include "util/result.hpp"
#include "util/units.hpp"

namespace oomguard {

class PsiTrigger {
public:
    PsiTrigger() = default;
    ~PsiTrigger();
    PsiTrigger(const PsiTrigger&) = delete;
    PsiTrigger& operator=(const PsiTrigger&) = delete;

    // "some <stall_us> <window_us>"; the window must be >= 500ms (kernel < 6.5).
    Status open(const std::string& proc_root, Duration stall, Duration window);
    void close();
    int fd() const { return fd_; }

private:
    int fd_ = -1;
};

// Parses a /proc/pressure/* file: "some avg10=.. avg60=.. avg300=.. total=N".
struct PsiLine {
    double avg10 = 0, avg60 = 0, avg300 = 0;
    uint64_t total_us = 0;
};
struct PsiValues {
    PsiLine some, full;
    bool has_full = false;
};
Result<PsiValues> parse_psi(std::string_view text);

}  // namespace oomguard
