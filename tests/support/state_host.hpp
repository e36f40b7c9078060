// A Host whose state and config a test sets field by field, and which keeps
// every journal entry a component logs through it. Header-only: it needs the
// core's headers, which only the tests that link the daemon's code have.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/host.hpp"

namespace oomguard::test {

class StateHost final : public Host, public Log {
public:
    struct Entry {
        Event event;
        int priority;
        std::string message;
    };
    DaemonState s;
    Config c;
    std::vector<Entry> entries;

    const DaemonState& state() const override { return s; }
    const Config& config() const override { return c; }
    Log& log() override { return *this; }
    void log(Event e, int priority, std::string_view message,
             const std::vector<LogField>&) override {
        entries.push_back({e, priority, std::string(message)});
    }
    size_t count(Event e) const {
        size_t n = 0;
        for (const Entry& x : entries) n += x.event == e;
        return n;
    }
    void record_oom_kill(const OomKill&) override {}
    void record_oom_request_ignored() override {}
    void record_cgroup_kill() override {}
    void record_prediction(const PredictedTask&) override {}
    void record_prediction_result(bool) override {}
    void record_audit(const AuditCounts&) override {}
    Status reload() override { return ok_status(); }
};

}  // namespace oomguard::test
