// All of tests/support in one include.
#pragma once

#include "support/cgroupfs.hpp"
#include "support/fake_proc.hpp"
#include "support/files.hpp"
#include "support/journal.hpp"
#include "support/pod_logs.hpp"
#include "support/process.hpp"
#include "support/rig_io.hpp"
#include "support/rig_paths.hpp"
// support/state_host.hpp needs the core headers: include it where they are.
