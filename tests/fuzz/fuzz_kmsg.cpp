// Fuzzes the kmsg OOM-report parsers and the report assembler. The input is a
// stream of /dev/kmsg lines. Invariants:
//  - parse_kmsg_record: a message is a part of its line; level is -1..7;
//  - parse_oom_kill_line: the pid is the number the text gives after the last
//    ",pid=" (checked with std::from_chars), and the text really holds
//    ",task_memcg=<task_memcg>,task=<task>,pid=" with the values returned; the
//    other views point into the message;
//  - parse_killed_process_line: the pid is the number after "Killed process ",
//    the task is the text inside " (...)";
//  - OomReportAssembler: every Kill event's pid was printed in the input, its
//    task_memcg is a part of the input, rss >= anon rss, nothing stays pending
//    after flush(), and no more events come out than lines went in (+1).
#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "cgroup/kmsg.hpp"
#include "fuzz_check.hpp"

using namespace oomguard;

namespace {

bool inside(std::string_view part, std::string_view whole) {
    if (part.empty()) return true;
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool number_at(std::string_view s, int64_t& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p != s.data();
}

void check_oom_kill(std::string_view msg) {
    OomKillLine ok;
    if (!parse_oom_kill_line(msg, ok)) return;
    const std::string what = fuzz::quote(msg);
    const size_t head = msg.find("oom-kill:");
    FUZZ_CHECK(head != std::string_view::npos, what);
    const std::string_view body = msg.substr(head + 9);
    const size_t at = body.rfind(",pid=");
    FUZZ_CHECK(at != std::string_view::npos, what);
    int64_t want = 0;
    FUZZ_CHECK(number_at(body.substr(at + 5), want) && want == ok.pid,
               what + " -> pid " + std::to_string(ok.pid));
    const std::string tail =
        ",task_memcg=" + std::string(ok.task_memcg) + ",task=" + std::string(ok.task) + ",pid=";
    FUZZ_CHECK(body.find(tail) != std::string_view::npos, what + " lacks " + fuzz::quote(tail));
    FUZZ_CHECK(inside(ok.constraint, msg) && inside(ok.oom_memcg, msg) &&
                   inside(ok.task_memcg, msg) && inside(ok.task, msg),
               what);
}

void check_killed(std::string_view msg) {
    KilledProcessLine kp;
    if (!parse_killed_process_line(msg, kp)) return;
    const std::string what = fuzz::quote(msg);
    const size_t k = msg.find("Killed process ");
    FUZZ_CHECK(k != std::string_view::npos, what);
    int64_t want = 0;
    FUZZ_CHECK(number_at(msg.substr(k + 15), want) && want == kp.pid && kp.pid >= 0,
               what + " -> pid " + std::to_string(kp.pid));
    const std::string named = std::to_string(kp.pid) + " (" + std::string(kp.task) + ")";
    FUZZ_CHECK(msg.find(named) != std::string_view::npos, what + " lacks " + fuzz::quote(named));
    FUZZ_CHECK(inside(kp.task, msg), what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    OomReportAssembler assembler;
    std::vector<KernelOomEvent> events;
    size_t lines = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        const std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        KmsgRecord r;
        if (!parse_kmsg_record(line, r)) continue;
        ++lines;
        FUZZ_CHECK(r.level >= -1 && r.level <= 7, fuzz::quote(line));
        FUZZ_CHECK(!r.message.empty() || r.level >= 0, fuzz::quote(line));
        FUZZ_CHECK(inside(r.message, line), fuzz::quote(line));
        check_oom_kill(r.message);
        check_killed(r.message);
        std::string_view group;
        if (parse_oom_group_line(r.message, group))
            FUZZ_CHECK(inside(group, r.message), fuzz::quote(line));
        assembler.feed(r, events);
    }
    assembler.flush(events);
    FUZZ_CHECK(!assembler.pending(), "pending after flush");
    FUZZ_CHECK(events.size() <= lines + 1, fuzz::quote(text));
    for (const KernelOomEvent& e : events) {
        if (e.type != KernelOomEvent::Type::Kill) continue;
        const std::string what = fuzz::quote(text) + "\n  event pid " + std::to_string(e.pid) +
                                 " memcg " + fuzz::quote(e.task_memcg);
        FUZZ_CHECK(text.find(std::to_string(e.pid)) != std::string_view::npos, what);
        FUZZ_CHECK(text.find(e.task_memcg) != std::string_view::npos, what);
        FUZZ_CHECK(text.find(e.task) != std::string_view::npos, what);
        FUZZ_CHECK(!e.have_rss || e.rss_bytes >= e.anon_rss_bytes,
                   what + " rss " + std::to_string(e.rss_bytes) + " < anon " +
                       std::to_string(e.anon_rss_bytes));
    }
    return 0;
}
