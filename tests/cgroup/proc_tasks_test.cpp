// scan_cgroup_tasks: the /proc reader behind the sandbox check and the kill
// action's oom_score_adj rule, against a fake cgroup directory and /proc.
#include "cgroup/proc_tasks.hpp"

#include <gtest/gtest.h>

#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {

struct Rig {
    TempDir t;
    std::string cg = t / "cg";
    std::string proc = t / "proc";
    Rig() { makeDir(cg); }
    void task(int pid, const std::string& comm, int adj, const std::string& cmdline = "") const {
        makeFile(proc + "/" + std::to_string(pid) + "/comm", comm + "\n");
        makeFile(proc + "/" + std::to_string(pid) + "/oom_score_adj", std::to_string(adj) + "\n");
        if (!cmdline.empty())
            makeFile(proc + "/" + std::to_string(pid) + "/cmdline", cmdline + std::string(1, '\0'));
    }
    TaskScan scan(const std::string& procs) const {
        makeFile(cg + "/cgroup.procs", procs);
        int fd = ::open(cg.c_str(), O_RDONLY | O_DIRECTORY);
        TaskScan s = scan_cgroup_tasks(fd, proc);
        ::close(fd);
        return s;
    }
};

}  // namespace

TEST(ProcTasks, CountsAndLowestOomScoreAdj) {
    Rig r;
    r.task(10, "app", 1000);
    r.task(11, "helper", -997);
    TaskScan s = r.scan("10\n11\n");
    EXPECT_EQ(s.tasks, 2);
    ASSERT_TRUE(s.min_oom_score_adj);
    EXPECT_EQ(*s.min_oom_score_adj, -997);
    EXPECT_FALSE(s.sandbox);
    EXPECT_TRUE(s.note.empty()) << s.note;
}

TEST(ProcTasks, SandboxByCommByArgv0OrByALoneTaskAtMinus998) {
    Rig r;
    r.task(20, "pause", -998);
    EXPECT_TRUE(r.scan("20\n").sandbox);
    r.task(21, "sh", 0, "/usr/bin/pause");
    EXPECT_TRUE(r.scan("21\n").sandbox) << "argv[0]'s basename";
    makeFile(r.proc + "/22/oom_score_adj", "-998\n");  // no comm, no cmdline
    EXPECT_TRUE(r.scan("22\n").sandbox);
    r.task(23, "app", -998);
    r.task(24, "app", -998);
    EXPECT_FALSE(r.scan("23\n24\n").sandbox) << "two tasks at -998 are not the pause sandbox";
    r.task(25, "pauser", 0, "pause-not");
    EXPECT_FALSE(r.scan("25\n").sandbox);
}

TEST(ProcTasks, OtherPidNamespaceAndUnreadable) {
    Rig r;
    TaskScan hidden = r.scan("0\n0\n");
    EXPECT_EQ(hidden.tasks, 2);
    EXPECT_FALSE(hidden.min_oom_score_adj);
    EXPECT_NE(hidden.note.find("another pid namespace"), std::string::npos);
    TaskScan none = r.scan("");
    EXPECT_EQ(none.tasks, 0);
    EXPECT_EQ(none.note, "no tasks");
    TaskScan gone = r.scan("30\n");  // no /proc/30
    EXPECT_EQ(gone.tasks, 1);
    EXPECT_FALSE(gone.min_oom_score_adj);
    EXPECT_NE(gone.note.find("unreadable"), std::string::npos);
    ::unlink((r.cg + "/cgroup.procs").c_str());
    int fd = ::open(r.cg.c_str(), O_RDONLY | O_DIRECTORY);
    TaskScan missing = scan_cgroup_tasks(fd, r.proc);
    ::close(fd);
    EXPECT_EQ(missing.tasks, -1);
    EXPECT_EQ(missing.note, "cgroup.procs unreadable");
}

// An oom_score_adj that is not a number is unreadable, never a guess: strtol
// read "-997x" as -997 and "x" as 0, which passed a task as killable.
TEST(ProcTasks, AnOomScoreAdjThatIsNotANumberIsUnreadable) {
    Rig r;
    r.task(30, "app", 0);
    makeFile(r.proc + "/30/oom_score_adj", "x\n");
    TaskScan s = r.scan("30\n");
    EXPECT_EQ(s.tasks, 1);
    EXPECT_FALSE(s.min_oom_score_adj) << *s.min_oom_score_adj;
    EXPECT_NE(s.note.find("oom_score_adj unreadable"), std::string::npos) << s.note;
    r.task(31, "helper", -997);
    s = r.scan("30\n31\n");
    ASSERT_TRUE(s.min_oom_score_adj);
    EXPECT_EQ(*s.min_oom_score_adj, -997) << "the readable task still counts";
}
