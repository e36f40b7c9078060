#include "support/rig_paths.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <utility>

#include "support/cgroupfs.hpp"
#include "support/files.hpp"

namespace oomguard::test {

namespace {

bool has_key(const std::string& toml, const std::string& key) {
    return std::regex_search(toml, std::regex("(^|\n)[ \t]*" + key + "[ \t]*="));
}

const std::string kHeader = "[paths]\n";

// Where the first [paths] table's lines start and end ([body, end)), or
// npos when the config has no [paths] table.
std::pair<size_t, size_t> paths_table(const std::string& config) {
    size_t h = config.compare(0, kHeader.size(), kHeader) == 0 ? 0 : config.find("\n" + kHeader);
    if (h == std::string::npos) return {std::string::npos, std::string::npos};
    if (h != 0) ++h;  // past the newline
    const size_t body = h + kHeader.size();
    size_t end = config.find("\n[", body - 1);
    end = end == std::string::npos ? config.size() : end + 1;
    return {body, end};
}

}  // namespace

bool RigPaths::sets(const std::string& config, const std::string& key) {
    auto [body, end] = paths_table(config);
    return body != std::string::npos && has_key(config.substr(body, end - body), key);
}

RigPaths::RigPaths(const std::string& dir)
    : cgroup_root(dir + "/cgroup"),
      kmsg(dir + "/kmsg"),
      lock(dir + "/oomguard.lock"),
      no_bus(dir + "/no-system-bus"),
      trigger(dir + "/sysrq-trigger") {
    if (::access(cgroup_root.c_str(), F_OK) != 0) FakeCgroupFs fs(cgroup_root, CgroupVersion::V2);
    if (::access(kmsg.c_str(), F_OK) != 0) write_file(kmsg, "");
    if (::access(lock.c_str(), F_OK) != 0) write_file(lock, "");
    // An unprivileged daemon (setpriv --reuid=nobody) must read them, and take the lock, too.
    ::chmod(cgroup_root.c_str(), 0755);
    ::chmod(kmsg.c_str(), 0644);
    ::chmod(lock.c_str(), 0666);
}

std::vector<std::string> RigPaths::args() const { return {"--cgroup-root", cgroup_root}; }

std::map<std::string, std::string> RigPaths::env() const {
    return {{"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + no_bus}};
}

std::vector<std::string> RigPaths::daemon_args(const std::string& config,
                                               const std::string& proc_root) const {
    std::vector<std::string> a = {
        "--config", config, "--proc-root", proc_root, "--log-target=stderr", "--no-mlock"};
    for (const auto& x : args()) a.push_back(x);
    return a;
}

std::map<std::string, std::string> RigPaths::env(const std::string& notify_socket) const {
    auto e = env();
    e["NOTIFY_SOCKET"] = notify_socket;
    return e;
}

std::string RigPaths::toml(const std::string& set) const {
    std::string s;
    if (!has_key(set, "kmsg")) s += "kmsg = \"" + kmsg + "\"\n";
    if (!has_key(set, "lock")) s += "lock = \"" + lock + "\"\n";
    return s;
}

std::string RigPaths::apply(const std::string& config) const {
    auto [body, end] = paths_table(config);
    if (body == std::string::npos) {
        std::string c = config;
        if (!c.empty() && c.back() != '\n') c += '\n';
        return c + kHeader + toml();
    }
    std::string set = config.substr(body, end - body);
    std::string add = toml(set);
    if (!set.empty() && set.back() != '\n') add = "\n" + add;
    return config.substr(0, end) + add + config.substr(end);
}

}  // namespace oomguard::test
