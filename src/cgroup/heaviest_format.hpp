// How a HeaviestReport reads in the journal: a one-line summary, a compact
// top-N table for the message text, and the structured fields. Pure functions.
#pragma once

#include <string>
#include <vector>

#include "cgroup/cgroup_monitor.hpp"
#include "core/log.hpp"

namespace oomguard {

// "unlimited", "512 MiB", or "?" when unknown.
std::string format_limit(const CgroupInfo& c);

// "heaviest pod default/memhog (BestEffort), container app: working set 1.2 GiB ..."
std::string heaviest_summary(const HeaviestReport& r);

// "  #  WORKING SET  USAGE  LIMIT  QOS  POD" and one row per entry (at most n).
std::string heaviest_table(const HeaviestReport& r, size_t n = 5);

// OOMGUARD_CGROUP, OOMGUARD_POD_UID, OOMGUARD_POD_NAMESPACE, OOMGUARD_POD_NAME,
// OOMGUARD_CONTAINER_NAME, OOMGUARD_CONTAINER_ID, OOMGUARD_QOS,
// OOMGUARD_WORKING_SET_BYTES and a few more. Nothing when the report is empty.
void append_heaviest_fields(const HeaviestReport& r, std::vector<LogField>& fields);

}  // namespace oomguard
