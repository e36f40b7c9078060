// The announced-property table (bus/announced.hpp): each entry sees exactly the
// change of its own DaemonState fields, and the table covers every property of
// org.oomguard1 that emits PropertiesChanged, but LastTriggerTarget (not in the
// state: the bus thread compares it itself).
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "bus/announced.hpp"

using namespace oomguard;

namespace {

// A change of each field a property shows (two for the two-field ones).
const std::multimap<std::string, std::function<void(DaemonState&)>>& changes() {
    static const std::multimap<std::string, std::function<void(DaemonState&)>> m = {
        {"MemAvailable", [](DaemonState& s) { s.sample.mem_available += 1; }},
        {"MemTotal", [](DaemonState& s) { s.sample.mem_total += 1; }},
        {"Threshold", [](DaemonState& s) { s.levels.min += 1; }},
        {"WarnThreshold", [](DaemonState& s) { s.levels.warn += 1; }},
        {"State", [](DaemonState& s) { s.state = MemState::Critical; }},
        {"Mode", [](DaemonState& s) { s.mode = ActionMode::KillCgroup; }},
        {"DryRun", [](DaemonState& s) { s.dry_run = !s.dry_run; }},
        {"TriggerCount", [](DaemonState& s) { s.triggers_total += 1; }},
        {"TriggerFailures", [](DaemonState& s) { s.trigger_failures_total += 1; }},
        {"LastTrigger", [](DaemonState& s) { s.last_trigger_realtime_usec += 1; }},
        {"KernelOomKills", [](DaemonState& s) { s.oom_kills_total += 1; }},
        {"LastVictim", [](DaemonState& s) { s.last_oom_kill.realtime_usec += 1; }},
        {"LastVictim", [](DaemonState& s) { s.last_oom_kill.pid += 1; }},
        {"PredictedVictim", [](DaemonState& s) { s.prediction.oom_score += 1; }},
        {"PredictedVictim", [](DaemonState& s) { s.prediction.pid += 1; }},
        {"AuditFindings", [](DaemonState& s) { s.audit.findings[0] += 1; }},
        {"LastError", [](DaemonState& s) { s.last_error = "x"; }},
    };
    return m;
}

}  // namespace

TEST(AnnouncedProperties, EachSeesItsOwnFieldsAndNoOther) {
    const DaemonState base;
    std::set<std::string> seen;
    for (const AnnouncedProperty& p : announced_properties()) {
        ASSERT_TRUE(changes().count(p.name)) << p.name << ": no change in this test";
        seen.insert(p.name);
        EXPECT_FALSE(p.differs(base, base)) << p.name;
        EXPECT_EQ(p.memory, std::string(p.name).rfind("Mem", 0) == 0) << p.name;
    }
    EXPECT_EQ(seen.size(), announced_properties().size()) << "a property listed twice";
    for (const auto& [name, change] : changes()) {
        DaemonState s;
        change(s);
        EXPECT_TRUE(announced_differ(base, s)) << name;
        for (const AnnouncedProperty& p : announced_properties())
            EXPECT_EQ(p.differs(base, s), p.name == name) << name << " changed, " << p.name;
    }
    // A counter the bus does not announce wakes nothing.
    DaemonState s;
    s.samples_total += 1;
    s.sample_errors_total += 1;
    EXPECT_FALSE(announced_differ(base, s));
}

TEST(AnnouncedProperties, AreTheInterfacesChangingPropertiesButLastTriggerTarget) {
    std::ifstream in(std::string(OOMGUARD_SOURCE_DIR) + "/packaging/dbus/org.oomguard1.xml");
    ASSERT_TRUE(in) << "the interface XML";
    std::stringstream xml;
    xml << in.rdbuf();
    const std::string text = xml.str();
    // <property name="X" .../> emits changes; <property name="X" ...> with a
    // "const" annotation does not.
    std::set<std::string> emitting;
    const std::regex prop(R"re(<property name="(\w+)"[^>]*?(/?)>)re");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), prop);
         it != std::sregex_iterator(); ++it) {
        const std::string name = (*it)[1];
        if ((*it)[2] == "/") {
            emitting.insert(name);
            continue;
        }
        const size_t end = text.find("</property>", static_cast<size_t>(it->position(0)));
        const std::string body = text.substr(static_cast<size_t>(it->position(0)),
                                             end - static_cast<size_t>(it->position(0)));
        if (body.find("EmitsChangedSignal\" value=\"const\"") == std::string::npos)
            emitting.insert(name);
    }
    ASSERT_TRUE(emitting.erase("LastTriggerTarget")) << text;
    std::set<std::string> table;
    for (const AnnouncedProperty& p : announced_properties()) table.insert(p.name);
    EXPECT_EQ(table, emitting);
}
