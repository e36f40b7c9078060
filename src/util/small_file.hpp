// One reader for the small files the daemon reads whole: proc and cgroupfs
// files, container runtimes' state. The path is named in every error, and a
// file that is not a regular file (a FIFO planted where a state file should
// be) or larger than `max` is refused without blocking or reading it all.
// Not for the hot path (it allocates): the samplers keep their fds open.
#pragma once

#include <cstddef>
#include <string>

#include "util/result.hpp"

namespace oomguard {

Result<std::string> read_small_file(const std::string& path, size_t max = size_t{1} << 20);

}  // namespace oomguard
