// The instance lock ([paths] lock): two instances (the host package and the
// DaemonSet) would both act on one crossing, so the second refuses to start,
// naming the holder's pid. flock, the holder's pid written into the file.
#pragma once

#include <string>

#include "core/log.hpp"
#include "util/result.hpp"

namespace oomguard {

// The held lock's fd (keep it open for the process's life), or -1 when there is
// no lock (path "" or it cannot be opened: logged, not fatal, guarding the node
// matters more). An error (logged) when another instance holds it.
Result<int> take_instance_lock(const std::string& path, Log& log);

}  // namespace oomguard
