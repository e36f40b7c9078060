// parse_config / apply_config_text: one TOML file over a Config, key by key,
// every error with its file and line; check_config_relations once all are applied.
#include <toml++/toml.h>

#include <algorithm>
#include <functional>
#include <map>

#include "config/config.hpp"

namespace oomguard {

namespace {

class Parser {
public:
    Parser(std::vector<ConfigError>& errors, const std::string& file)
        : errors_(errors), file_(file) {}

    void error(const std::string& key, const toml::node* node, std::string msg) {
        int line = node ? static_cast<int>(node->source().begin.line) : 0;
        errors_.push_back(ConfigError{key, line, std::move(msg), file_});
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
            error(
                key, &n,
                std::string("a bare number has no unit; write it as a string with a unit, e.g. ") +
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
            case toml::node_type::string:
                return "a string";
            case toml::node_type::integer:
                return "an integer";
            case toml::node_type::floating_point:
                return "a number";
            case toml::node_type::boolean:
                return "a boolean";
            case toml::node_type::array:
                return "an array";
            case toml::node_type::table:
                return "a table";
            default:
                return "a date/time";
        }
    }

private:
    std::vector<ConfigError>& errors_;
    const std::string& file_;
};

using KeyHandler = std::function<void(const std::string& key, const toml::node&)>;

}  // namespace

void apply_config_text(std::string_view text, const std::string& source_path, Config& c,
                       std::vector<ConfigError>& errors) {
    c.sources.push_back(source_path);
    toml::table root;
    try {
        root = toml::parse(text, source_path);
    } catch (const toml::parse_error& e) {
        errors.push_back(ConfigError{
            "", static_cast<int>(e.source().begin.line),
            std::string("TOML syntax error: ") + std::string(e.description()), source_path});
        return;
    }

    const size_t first_error = errors.size();
    Parser p(errors, source_path);

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
    const std::map<std::string, std::map<std::string, KeyHandler>> schema = {
        {"memory",
         {{"min_available",
           [&](auto& k, auto& n) {
               if (auto v = size_pct(k, n)) {
                   if (!v->is_percent && v->bytes == 0)
                       p.error(k, &n, "must be greater than 0");
                   else
                       c.memory.min_available = *v;
               }
           }},
          {"warn_available",
           [&](auto& k, auto& n) {
               if (auto v = size_pct(k, n)) {
                   c.memory.warn_available = *v;
               }
           }},
          {"recover_available",
           [&](auto& k, auto& n) {
               if (auto v = size_pct(k, n)) {
                   c.memory.recover_available = *v;
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
                       p.error(k, &n,
                               "unknown mode \"" + *s +
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
               }
           }},
          {"idle_interval",
           [&](auto& k, auto& n) {
               if (auto d = duration(k, n)) {
                   if (*d < std::chrono::microseconds(100) || *d > std::chrono::seconds(60))
                       p.error(k, &n, "must be between 100us and 60s");
                   else
                       c.poll.idle_interval = *d;
               }
           }},
          {"max_interval",
           [&](auto& k, auto& n) {
               if (auto d = duration(k, n)) {
                   if (*d < std::chrono::milliseconds(1) || *d > std::chrono::seconds(60))
                       p.error(k, &n, "must be between 1ms and 60s");
                   else
                       c.poll.max_interval = *d;
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
                       p.error(k, &n,
                               "must be an absolute path or \"\" (no lock), got \"" + *s + "\"");
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
                   p.error(
                       k, &n,
                       std::string("expected an array of strings, got ") + Parser::type_name(n));
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
                       p.error(
                           k, &n,
                           "must be a path below the memory cgroup root, without \"..\", got \"" +
                               *s + "\"");
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
            c.key_origins[full] =
                Config::Origin{source_path, static_cast<int>(node.source().begin.line)};
        }
    }
    std::stable_sort(errors.begin() + static_cast<std::ptrdiff_t>(first_error), errors.end(),
                     [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
}

void check_config_relations(const Config& c, std::vector<ConfigError>& errors) {
    auto error = [&](const std::string& key, std::string msg) {
        auto it = c.key_origins.find(key);
        if (it == c.key_origins.end())
            errors.push_back(ConfigError{key, 0, std::move(msg), c.source_path});
        else
            errors.push_back(ConfigError{key, it->second.line, std::move(msg), it->second.file});
    };

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
        error("memory.warn_available", "(" + m.warn_available->to_string() +
                                           ") must be above memory.min_available (" +
                                           m.min_available.to_string() + ")");
    if (m.recover_available && comparable(*m.recover_available, m.min_available) &&
        less_eq(*m.recover_available, m.min_available))
        error("memory.recover_available", "(" + m.recover_available->to_string() +
                                              ") must be above memory.min_available (" +
                                              m.min_available.to_string() + ")");
    // The poll schedule needs min_interval <= idle_interval <= max_interval.
    const auto& pl = c.poll;
    if (pl.min_interval > pl.max_interval)
        error("poll.min_interval", "(" + render_duration(pl.min_interval) +
                                       ") must not exceed poll.max_interval (" +
                                       render_duration(pl.max_interval) + ")");
    if (pl.idle_interval && *pl.idle_interval < pl.min_interval)
        error("poll.idle_interval", "(" + render_duration(*pl.idle_interval) +
                                        ") must not be below poll.min_interval (" +
                                        render_duration(pl.min_interval) + ")");
    if (pl.idle_interval && *pl.idle_interval > pl.max_interval)
        error("poll.idle_interval", "(" + render_duration(*pl.idle_interval) +
                                        ") must not exceed poll.max_interval (" +
                                        render_duration(pl.max_interval) + ")");
}

ConfigLoad parse_config(std::string_view text, const std::string& source_path) {
    ConfigLoad out;
    Config c;
    c.source_path = source_path;
    apply_config_text(text, source_path, c, out.errors);
    check_config_relations(c, out.errors);
    std::stable_sort(out.errors.begin(), out.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
    if (out.errors.empty()) out.config = std::move(c);
    return out;
}

}  // namespace oomguard
