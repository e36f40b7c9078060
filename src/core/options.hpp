// The command line's settings for the daemon (what main.cpp parses).
#pragma once

#include <optional>
#include <string>

#include "core/log.hpp"

namespace oomguard {

struct DaemonOptions {
    std::string config_path;
    bool dry_run = false;
    std::optional<std::string> proc_root;
    std::optional<std::string> cgroup_root;
    LogTarget log_target = LogTarget::Auto;
    LogFormat log_format = LogFormat::Plain;  // stderr lines: plain | logfmt | json
    bool mlock = true;
    bool allow_insecure_config = false;  // tests only: skip the config owner/mode check
};

}  // namespace oomguard
