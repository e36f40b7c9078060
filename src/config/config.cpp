#include "config/config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <toml++/toml.h>

namespace oomguard {

const char* to_string(ActionMode m) {
    switch (m) {
        case ActionMode::Sysrq: return "sysrq";
        case ActionMode::DryRun: return "dry-run";
        case ActionMode::KillCgroup: return "kill-cgroup";
    }
    return "?";
}

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
                   if (*s == "sysrq") c.action.mode = ActionMode::Sysrq;
                   else if (*s == "dry-run") c.action.mode = ActionMode::DryRun;
                   else if (*s == "kill-cgroup") c.action.mode = ActionMode::KillCgroup;
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
          {"kmsg", [&](auto& k, auto& n) { path(k, n, c.paths.kmsg); }}}},
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
    if (c.poll.min_interval > c.poll.max_interval)
        p.error("poll.min_interval", lines["poll.min_interval"],
                "(" + format_duration(c.poll.min_interval) + ") must not exceed poll.max_interval (" +
                    format_duration(c.poll.max_interval) + ")");

    std::stable_sort(out.errors.begin(), out.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
    if (out.errors.empty()) out.config = std::move(c);
    return out;
}

ConfigLoad load_config(const std::string& path) {
    // Plain read(2), not iostreams: a stream here would fault in (and, with
    // mlockall, lock) a good share of libstdc++'s locale code for nothing.
    std::string text;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0;
    while (ok) {
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0)
            text.append(buf, static_cast<size_t>(n));
        else if (n == 0)
            break;
        else if (errno != EINTR)
            ok = false;
    }
    if (!ok) {
        int err = errno;
        if (fd >= 0) ::close(fd);
        ConfigLoad out;
        out.errors.push_back(
            ConfigError{"", 0, std::string("cannot read config file: ") + std::strerror(err)});
        return out;
    }
    ::close(fd);
    return parse_config(text, path);
}

std::string render_config(const Config& c) {
    std::ostringstream o;
    auto q = [](const std::string& s) { return "\"" + s + "\""; };
    o << "[memory]\n";
    o << "min_available = " << q(c.memory.min_available.to_string()) << "\n";
    if (c.memory.warn_available)
        o << "warn_available = " << q(c.memory.warn_available->to_string()) << "\n";
    if (c.memory.recover_available)
        o << "recover_available = " << q(c.memory.recover_available->to_string()) << "\n";
    else
        o << "# recover_available: unset (" << (c.memory.warn_available ? "= warn_available" : "= 2 x min_available") << ")\n";
    o << "\n[action]\n";
    o << "mode = " << q(to_string(c.action.mode)) << "\n";
    o << "sysrq_trigger = " << q(c.action.sysrq_trigger) << "\n";
    o << "repeat_after = " << q(format_duration(c.action.repeat_after)) << "\n";
    o << "fallback_sysrq = " << (c.action.fallback_sysrq ? "true" : "false") << "\n";
    o << "\n[poll]\n";
    o << "min_interval = " << q(format_duration(c.poll.min_interval)) << "\n";
    o << "max_interval = " << q(format_duration(c.poll.max_interval)) << "\n";
    o << "fill_rate = " << q(format_bytes(c.poll.fill_rate) + "/s") << "\n";
    o << "psi = " << (c.poll.psi ? "true" : "false") << "\n";
    o << "\n[paths]\n";
    o << "proc = " << q(c.paths.proc) << "\ncgroup = " << q(c.paths.cgroup) << "\nkmsg = " << q(c.paths.kmsg) << "\n";
    o << "\n[kubernetes]\n";
    o << "log_heaviest = " << (c.kubernetes.log_heaviest ? "true" : "false") << "\n";
    o << "pod_logs_dir = " << q(c.kubernetes.pod_logs_dir) << "\n";
    o << "exclude_namespaces = [";
    for (size_t i = 0; i < c.kubernetes.exclude_namespaces.size(); ++i)
        o << (i ? ", " : "") << q(c.kubernetes.exclude_namespaces[i]);
    o << "]\n";
    o << "kill_guaranteed = " << (c.kubernetes.kill_guaranteed ? "true" : "false") << "\n";
    o << "\n[metrics]\n";
    o << "textfile = " << q(c.metrics.textfile) << "\n";
    o << "interval = " << q(format_duration(c.metrics.interval)) << "\n";
    return o.str();
}

}  // namespace oomguard
