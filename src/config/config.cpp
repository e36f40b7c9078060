#include "config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>

#include "sensors/meminfo.hpp"

namespace oomguard {

std::string ConfigError::to_string(const std::string& path) const {
    std::ostringstream o;
    o << path;
    if (line > 0) o << ":" << line;
    o << ": ";
    if (!key.empty()) o << key << ": ";
    o << message;
    return o.str();
}

namespace {

class Parser {
public:
    explicit Parser(ConfigLoad& out) : out_(out) {}

    void error(const std::string& key, const toml::node* node, std::string msg) {
        int line = node ? static_cast<int>(node->source().begin.line) : 0;
        out_.errors.push_back(ConfigError{key, line, std::move(msg)});
    }

    std::optional<std::string> string(const std::string& key, const toml::node& n) {
        if (auto v = n.value<std::string>(); v && n.is_string()) return *v;
        error(key, &n, std::string("expected a string, got ") + type_name(n));
        return std::nullopt;
    }

    std::optional<bool> boolean(const std::string& key, const toml::node& n) {
        if (n.is_boolean()) return *n.value<bool>();
        error(key, &n, std::string("expected true or false, got ") + type_name(n));
        return std::nullopt;
    }

    // Sizes, durations and rates are strings with units. A bare number is an error
    // that says which unit was meant.
    template <typename T, typename F>
    std::optional<T> unit_string(const std::string& key, const toml::node& n, F parse,
                                 const char* example) {
        if (n.is_integer() || n.is_floating_point()) {
            error(key, &n, std::string("a bare number has no unit; write it as a string with a unit, e.g. ") +
                               example);
            return std::nullopt;
        }
        auto s = string(key, n);
        if (!s) return std::nullopt;
        auto r = parse(*s);
        if (!r) {
            error(key, &n, r.error().message);
            return std::nullopt;
        }
        return *r;
    }

    static const char* type_name(const toml::node& n) {
        switch (n.type()) {
            case toml::node_type::string: return "a string";
            case toml::node_type::integer: return "an integer";
            case toml::node_type::floating_point: return "a number";
            case toml::node_type::boolean: return "a boolean";
            case toml::node_type::array: return "an array";
            case toml::node_type::table: return "a table";
            default: return "a date/time";
        }
    }

private:
    ConfigLoad& out_;
};

using KeyHandler = std::function<void(const std::string& key, const toml::node&)>;

}  // namespace

ConfigLoad parse_config(std::string_view text, const std::string& source_path) {
    ConfigLoad out;
    toml::table root;
    try {
        root = toml::parse(text, source_path);
    } catch (const toml::parse_error& e) {
        out.errors.push_back(ConfigError{"", static_cast<int>(e.source().begin.line),
                                         std::string("TOML syntax error: ") + std::string(e.description())});
        return out;
    }

    Config c;
    c.source_path = source_path;
    Parser p(out);

    auto size_pct = [&](const std::string& k, const toml::node& n) {
        return p.unit_string<SizeOrPercent>(k, n, parse_size_or_percent, "\"350MiB\" or \"5%\"");
    };
    auto duration = [&](const std::string& k, const toml::node& n) {
        return p.unit_string<Duration>(k, n, parse_duration, "\"500ms\" or \"2s\"");
    };
    auto path = [&](const std::string& k, const toml::node& n, std::string& dst) {
        if (auto s = p.string(k, n)) {
            if (s->empty() || (*s)[0] != '/')
                p.error(k, &n, "must be an absolute path, got \"" + *s + "\"");
            else
                dst = *s;
        }
    };
    std::map<std::string, const toml::node*> lines;  // for cross-field errors

    const std::map<std::string, std::map<std::string, KeyHandler>> schema = {
        {"memory",
         {{"min_available",
           [&](auto& k, auto& n) {
               if (auto v = size_pct(k, n)) {
                   if (!v->is_percent && v->bytes == 0)
                       p.error(k, &n, "must be greater than 0");
                   else
                       c.memory.min_available = *v;
                   lines[k] = &n;
               }
           }},
          {"warn_available",
           [&](auto& k, auto& n) {
               if (auto v = size_pct(k, n)) {
                   c.memory.warn_available = *v;
                   lines[k] = &n;
               }
           }},
          {"recover_available",
           [&](auto& k, auto& n) {
               if (auto v = size_pct(k, n)) {
                   c.memory.recover_available = *v;
                   lines[k] = &n;
               }
           }}}},
        {"action",
         {{"mode",
           [&](auto& k, auto& n) {
               if (auto s = p.string(k, n)) {
                   if (*s == "sysrq")
                       c.action.mode = ActionMode::Sysrq;
                   else if (*s == "dry-run")
                       c.action.mode = ActionMode::DryRun;
                   else if (*s == "kill-cgroup")
                       c.action.mode = ActionMode::KillCgroup;
                   else
                       p.error(k, &n, "unknown mode \"" + *s +
                                          "\" (expected \"sysrq\", \"dry-run\" or \"kill-cgroup\")");
               }
           }},
          {"sysrq_trigger", [&](auto& k, auto& n) { path(k, n, c.action.sysrq_trigger); }},
          {"repeat_after",
           [&](auto& k, auto& n) {
               if (auto d = duration(k, n)) {
                   if (*d < std::chrono::milliseconds(10) || *d > std::chrono::hours(1))
                       p.error(k, &n, "must be between 10ms and 1h");
                   else
                       c.action.repeat_after = *d;
               }
           }},
          {"fallback_sysrq",
           [&](auto& k, auto& n) {
               if (auto b = p.boolean(k, n)) c.action.fallback_sysrq = *b;
           }}}},
        {"poll",
         {{"min_interval",
           [&](auto& k, auto& n) {
               if (auto d = duration(k, n)) {
                   if (*d < std::chrono::microseconds(100) || *d > std::chrono::seconds(10))
                       p.error(k, &n, "must be between 100us and 10s");
                   else
                       c.poll.min_interval = *d;
                   lines[k] = &n;
               }
           }},
          {"idle_interval",
           [&](auto& k, auto& n) {
               if (auto d = duration(k, n)) {
                   if (*d < std::chrono::microseconds(100) || *d > std::chrono::seconds(60))
                       p.error(k, &n, "must be between 100us and 60s");
                   else
                       c.poll.idle_interval = *d;
                   lines[k] = &n;
               }
           }},
          {"max_interval",
           [&](auto& k, auto& n) {
               if (auto d = duration(k, n)) {
                   if (*d < std::chrono::milliseconds(1) || *d > std::chrono::seconds(60))
                       p.error(k, &n, "must be between 1ms and 60s");
                   else
                       c.poll.max_interval = *d;
                   lines[k] = &n;
               }
           }},
          {"fill_rate",
           [&](auto& k, auto& n) {
               if (auto r = p.unit_string<uint64_t>(k, n, parse_rate, "\"4GiB/s\"")) {
                   if (*r < (1ull << 20) || *r > (1ull << 40))
                       p.error(k, &n, "must be between 1MiB/s and 1TiB/s");
                   else
                       c.poll.fill_rate = *r;
               }
           }},
          {"psi",
           [&](auto& k, auto& n) {
               if (auto b = p.boolean(k, n)) c.poll.psi = *b;
           }}}},
        {"paths",
         {{"proc", [&](auto& k, auto& n) { path(k, n, c.paths.proc); }},
          {"cgroup", [&](auto& k, auto& n) { path(k, n, c.paths.cgroup); }},
          {"kmsg", [&](auto& k, auto& n) { path(k, n, c.paths.kmsg); }},
          {"containerd_state", [&](auto& k, auto& n) { path(k, n, c.paths.containerd_state); }},
          {"crio_storage", [&](auto& k, auto& n) { path(k, n, c.paths.crio_storage); }},
          {"lock",
           [&](auto& k, auto& n) {
               // "" turns the instance lock off.
               if (auto s = p.string(k, n)) {
                   if (!s->empty() && (*s)[0] != '/')
                       p.error(k, &n, "must be an absolute path or \"\" (no lock), got \"" + *s + "\"");
                   else
                       c.paths.lock = *s;
               }
           }}}},
        {"kubernetes",
         {{"log_heaviest",
           [&](auto& k, auto& n) {
               if (auto b = p.boolean(k, n)) c.kubernetes.log_heaviest = *b;
           }},
          {"pod_logs_dir", [&](auto& k, auto& n) { path(k, n, c.kubernetes.pod_logs_dir); }},
          {"exclude_namespaces",
           [&](auto& k, auto& n) {
               const toml::array* arr = n.as_array();
               if (!arr) {
                   p.error(k, &n, std::string("expected an array of strings, got ") +
                                      Parser::type_name(n));
                   return;
               }
               std::vector<std::string> v;
               for (const auto& e : *arr) {
                   if (auto s = p.string(k, e)) v.push_back(*s);
               }
               c.kubernetes.exclude_namespaces = std::move(v);
           }},
          {"kill_guaranteed",
           [&](auto& k, auto& n) {
               if (auto b = p.boolean(k, n)) c.kubernetes.kill_guaranteed = *b;
           }},
          {"kubepods_cgroup",
           [&](auto& k, auto& n) {
               if (auto s = p.string(k, n)) {
                   if (s->find("..") != std::string::npos)
                       p.error(k, &n, "must be a path below the memory cgroup root, without \"..\", got \"" + *s + "\"");
                   else
                       c.kubernetes.kubepods_cgroup = *s;
               }
           }},
          {"scan_budget",
           [&](auto& k, auto& n) {
               if (auto d = duration(k, n)) {
                   if (*d < std::chrono::milliseconds(1) || *d > std::chrono::seconds(1))
                       p.error(k, &n, "must be between 1ms and 1s");
                   else
                       c.kubernetes.scan_budget = *d;
               }
           }}}},
        {"metrics",
         {{"textfile",
           [&](auto& k, auto& n) {
               if (auto s = p.string(k, n)) {
                   if (!s->empty() && (*s)[0] != '/')
                       p.error(k, &n, "must be an absolute path or empty, got \"" + *s + "\"");
                   else
                       c.metrics.textfile = *s;
               }
           }},
          {"interval",
           [&](auto& k, auto& n) {
               if (auto d = duration(k, n)) {
                   if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(1))
                       p.error(k, &n, "must be between 1s and 1h");
                   else
                       c.metrics.interval = *d;
               }
           }}}},
    };

    for (const auto& [table_name, table_node] : root) {
        std::string tname(table_name.str());
        auto it = schema.find(tname);
        if (it == schema.end()) {
            p.error(tname, &table_node, "unknown section or key");
            continue;
        }
        const toml::table* t = table_node.as_table();
        if (!t) {
            p.error(tname, &table_node, "expected a table [" + tname + "]");
            continue;
        }
        for (const auto& [key, node] : *t) {
            std::string full = tname + "." + std::string(key.str());
            auto h = it->second.find(std::string(key.str()));
            if (h == it->second.end()) {
                p.error(full, &node, "unknown key");
                continue;
            }
            h->second(full, node);
        }
    }

    // Cross-field checks: only between levels of the same kind (a size and a
    // percentage are compared at run time, against MemTotal).
    auto comparable = [](const SizeOrPercent& a, const SizeOrPercent& b) {
        return a.is_percent == b.is_percent;
    };
    auto less_eq = [](const SizeOrPercent& a, const SizeOrPercent& b) {
        return a.is_percent ? a.percent <= b.percent : a.bytes <= b.bytes;
    };
    const auto& m = c.memory;
    if (m.warn_available && comparable(*m.warn_available, m.min_available) &&
        less_eq(*m.warn_available, m.min_available))
        p.error("memory.warn_available", lines["memory.warn_available"],
                "(" + m.warn_available->to_string() + ") must be above memory.min_available (" +
                    m.min_available.to_string() + ")");
    if (m.recover_available && comparable(*m.recover_available, m.min_available) &&
        less_eq(*m.recover_available, m.min_available))
        p.error("memory.recover_available", lines["memory.recover_available"],
                "(" + m.recover_available->to_string() + ") must be above memory.min_available (" +
                    m.min_available.to_string() + ")");
    // The poll schedule needs min_interval <= idle_interval <= max_interval.
    const auto& pl = c.poll;
    if (pl.min_interval > pl.max_interval)
        p.error("poll.min_interval", lines["poll.min_interval"],
                "(" + render_duration(pl.min_interval) + ") must not exceed poll.max_interval (" +
                    render_duration(pl.max_interval) + ")");
    if (pl.idle_interval && *pl.idle_interval < pl.min_interval)
        p.error("poll.idle_interval", lines["poll.idle_interval"],
                "(" + render_duration(*pl.idle_interval) +
                    ") must not be below poll.min_interval (" + render_duration(pl.min_interval) +
                    ")");
    if (pl.idle_interval && *pl.idle_interval > pl.max_interval)
        p.error("poll.idle_interval", lines["poll.idle_interval"],
                "(" + render_duration(*pl.idle_interval) + ") must not exceed poll.max_interval (" +
                    render_duration(pl.max_interval) + ")");
    for (const auto& [key, node] : lines)
        if (node) c.key_lines[key] = static_cast<int>(node->source().begin.line);

    std::stable_sort(out.errors.begin(), out.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
    if (out.errors.empty()) out.config = std::move(c);
    return out;
}

std::vector<ConfigError> check_against_mem_total(const Config& c, uint64_t mem_total) {
    std::vector<ConfigError> errors;
    auto check = [&](const char* key, const std::optional<SizeOrPercent>& v, const char* why) {
        if (!v || v->is_percent || v->bytes < mem_total) return;
        auto it = c.key_lines.find(key);
        errors.push_back(
            ConfigError{key, it == c.key_lines.end() ? 0 : it->second,
                        "(" + v->to_string() + ") is at or above this node's MemTotal (" +
                            format_bytes(mem_total) + ", " + std::to_string(mem_total) +
                            " bytes): MemAvailable never gets there, so " + why +
                            "; use a smaller size or a percentage"});
    };
    check("memory.min_available", c.memory.min_available, "oomguard would act on a healthy node");
    check("memory.warn_available", c.memory.warn_available, "it would warn on a healthy node");
    check("memory.recover_available", c.memory.recover_available, "an episode would never end");
    return errors;
}

HostCheck check_against_host(const Config& c, const std::string& proc_root) {
    HostCheck out;
    MeminfoReader meminfo;
    MemSample s;
    if (Status st = meminfo.open(proc_root); !st) {
        out.note = "levels not checked against MemTotal: " + st.error().message;
        return out;
    }
    if (!meminfo.sample(s)) {
        out.note = "levels not checked against MemTotal: " + meminfo.last_error().message;
        return out;
    }
    out.errors = check_against_mem_total(c, s.mem_total);
    out.note = "levels checked against this host's MemTotal (" + format_bytes(s.mem_total) + ", " +
               meminfo.path() + ")";
    return out;
}

std::string insecure_config_reason(unsigned uid, unsigned mode, bool regular_file,
                                   unsigned daemon_uid) {
    if (!regular_file) return "is not a regular file";
    if (uid != 0 && uid != daemon_uid)
        return "is owned by uid " + std::to_string(uid) +
               ", not root: only root may decide what the daemon writes to (chown root:root it)";
    if (mode & (S_IWGRP | S_IWOTH)) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
        return std::string("is writable by ") + ((mode & S_IWOTH) ? "others" : "its group") +
               " (mode " + buf +
               "): only root may decide what the daemon writes to (chmod go-w it)";
    }
    return "";
}

ConfigLoad load_config(const std::string& path, ConfigFileCheck check) {
    // Larger than any real config: refuse rather than read a runaway file.
    constexpr size_t kMaxConfigBytes = 1 << 20;
    ConfigLoad out;
    auto fail = [&](std::string msg) {
        out.errors.push_back(ConfigError{"", 0, std::move(msg)});
        return out;
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return fail(std::string("cannot read config file: ") + std::strerror(errno));
    // Checked on the open fd, so the file checked is the file read.
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return fail(std::string("cannot stat config file: ") + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return fail("refusing config file: it is not a regular file");
    }
    if (!check.allow_insecure) {
        std::string why = insecure_config_reason(st.st_uid, st.st_mode, true, ::geteuid());
        if (!why.empty()) {
            ::close(fd);
            return fail("refusing config file: it " + why +
                        "; --allow-insecure-config overrides this for tests");
        }
    }
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            return fail(std::string("cannot read config file: ") + std::strerror(err));
        }
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxConfigBytes) {
            ::close(fd);
            return fail("refusing config file: larger than 1 MiB");
        }
    }
    ::close(fd);
    return parse_config(text, path);
}

namespace {

// A TOML basic string: quotes, backslashes and control characters escaped, so
// any path or name that loaded renders back to the same string.
std::string toml_quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char ch : s) {
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (ch < 0x20 || ch == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04X", ch);
                    out += buf;
                } else {
                    out += static_cast<char>(ch);
                }
        }
    }
    return out + "\"";
}

}  // namespace

// Exact values (render_size/render_duration), not the rounded human forms, so
// the output of --check-config loads again to the same config.
std::string render_config(const Config& c) {
    std::ostringstream o;
    auto q = [](const std::string& s) { return toml_quote(s); };
    o << "[memory]\n";
    o << "min_available = " << q(c.memory.min_available.to_config_string()) << "\n";
    if (c.memory.warn_available)
        o << "warn_available = " << q(c.memory.warn_available->to_config_string()) << "\n";
    if (c.memory.recover_available)
        o << "recover_available = " << q(c.memory.recover_available->to_config_string()) << "\n";
    else
        o << "# recover_available: unset (" << (c.memory.warn_available ? "= warn_available" : "= 2 x min_available") << ")\n";
    o << "\n[action]\n";
    o << "mode = " << q(to_string(c.action.mode)) << "\n";
    o << "sysrq_trigger = " << q(c.action.sysrq_trigger) << "\n";
    o << "repeat_after = " << q(render_duration(c.action.repeat_after)) << "\n";
    o << "fallback_sysrq = " << (c.action.fallback_sysrq ? "true" : "false") << "\n";
    o << "\n[poll]\n";
    o << "min_interval = " << q(render_duration(c.poll.min_interval)) << "\n";
    if (c.poll.idle_interval)
        o << "idle_interval = " << q(render_duration(*c.poll.idle_interval)) << "\n";
    else
        o << "# idle_interval: unset (" << render_duration(Config::Poll::kDefaultIdleInterval)
          << ", within [min_interval, max_interval])\n";
    o << "max_interval = " << q(render_duration(c.poll.max_interval)) << "\n";
    o << "fill_rate = " << q(render_size(c.poll.fill_rate) + "/s") << "\n";
    o << "psi = " << (c.poll.psi ? "true" : "false") << "\n";
    o << "\n[paths]\n";
    o << "proc = " << q(c.paths.proc) << "\ncgroup = " << q(c.paths.cgroup) << "\nkmsg = " << q(c.paths.kmsg) << "\nlock = " << q(c.paths.lock) << "\n";
    o << "containerd_state = " << q(c.paths.containerd_state)
      << "\ncrio_storage = " << q(c.paths.crio_storage) << "\n";
    o << "\n[kubernetes]\n";
    o << "log_heaviest = " << (c.kubernetes.log_heaviest ? "true" : "false") << "\n";
    o << "pod_logs_dir = " << q(c.kubernetes.pod_logs_dir) << "\n";
    o << "exclude_namespaces = [";
    for (size_t i = 0; i < c.kubernetes.exclude_namespaces.size(); ++i)
        o << (i ? ", " : "") << q(c.kubernetes.exclude_namespaces[i]);
    o << "]\n";
    o << "kill_guaranteed = " << (c.kubernetes.kill_guaranteed ? "true" : "false") << "\n";
    o << "kubepods_cgroup = " << q(c.kubernetes.kubepods_cgroup) << "\n";
    o << "scan_budget = " << q(format_duration(c.kubernetes.scan_budget)) << "\n";
    o << "\n[metrics]\n";
    o << "textfile = " << q(c.metrics.textfile) << "\n";
    o << "interval = " << q(render_duration(c.metrics.interval)) << "\n";
    return o.str();
}

}  // namespace oomguard
