// The only place the daemon thread and the D-Bus thread meet. The daemon thread
// never waits here: it only try_lock()s the mutex (when busy it keeps its data
// pending and tries again on the next loop iteration), and the bus thread holds
// the lock only to copy or swap, never across an sd-bus call. Each side wakes
// the other through an eventfd (a write(2) of 8 bytes, which never blocks).
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/bus_snapshot.hpp"
#include "core/log.hpp"
#include "core/requests.hpp"
#include "util/event_fd.hpp"

namespace oomguard {


// A journal entry made on the bus thread, logged by the daemon thread (the
// Journal is not shared between threads).
struct BusLogEntry {
    Event event = Event::Info;
    int priority = 0;
    std::string message;
    std::vector<LogField> fields;
};

struct BusChannel {
    std::mutex mutex;
    // daemon -> bus
    BusSnapshot snapshot;
    uint64_t version = 0;  // of snapshot; 0: nothing published yet
    // The two counters every sample moves, newer than the snapshot's: a state
    // that differs only in them is not published (a copy per idle wakeup, issue
    // 17); the bus thread reads these over the snapshot's for each method call.
    std::atomic<uint64_t> samples_total{0};
    std::atomic<uint64_t> sample_errors_total{0};
    std::vector<BusEvent> events;
    std::vector<RequestResult> results;
    // bus -> daemon
    std::vector<Request> requests;
    std::vector<BusLogEntry> logs;

    EventFd to_bus;     // polled by the bus thread
    EventFd to_daemon;  // polled by the daemon's loop
};

}  // namespace oomguard
