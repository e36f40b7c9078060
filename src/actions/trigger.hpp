// Writes 'f' to the sysrq trigger path (the kernel then OOM-kills one task,
// honouring oom_score_adj). Never blocks: a FIFO without a reader, or a full
// one, is an error, not a hang.
#pragma once

#include <string>

#include "util/result.hpp"

namespace oomguard {

class SysrqTrigger {
public:
    explicit SysrqTrigger(std::string path) : path_(std::move(path)) {}
    const std::string& path() const { return path_; }
    // Opens, writes "f", closes. The error names the path and the reason.
    Status fire() const;
    // A check at start and reload that writes nothing: a FIFO is opened and
    // closed (ENXIO: no reader yet); anything else, /proc/sysrq-trigger above
    // all, is only checked for write permission (faccessat), never opened.
    Status probe() const;

private:
    std::string path_;
};

}  // namespace oomguard
