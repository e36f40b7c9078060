#include "cgroup/runtime_state.hpp"

#include "util/small_file.hpp"

namespace oomguard {
namespace {

// A just-enough JSON reader: walks the text once, decodes strings, skips every
// value it does not need. Depth-bounded, so hostile nesting cannot overflow
// the stack.
class Json {
public:
    explicit Json(std::string_view s) : s_(s) {}

    Result<Annotations> annotations() {
        Annotations out;
        ws();
        if (!expect('{')) return fail("a JSON object");
        ws();
        if (peek() == '}') {
            ++i_;
            return finish(std::move(out));
        }
        for (;;) {
            std::string key;
            if (!member_key(&key)) return fail(what_);
            if (key == "annotations" && peek() == '{') {
                if (!annotation_object(out)) return fail(what_);
            } else if (!skip_value(1)) {
                return fail(what_);
            }
            ws();
            if (expect(',')) continue;
            if (expect('}')) break;
            return fail("',' or '}'");
        }
        return finish(std::move(out));
    }

private:
    static constexpr int kMaxDepth = 64;
    std::string_view s_;
    size_t i_ = 0;
    std::string what_ = "a value";

    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    bool expect(char c) {
        if (peek() != c || i_ >= s_.size()) return false;
        ++i_;
        return true;
    }
    void ws() {
        while (i_ < s_.size() &&
               (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
            ++i_;
    }
    Error fail(const std::string& expected) const {
        return Error::logic("bad JSON at byte " + std::to_string(i_) + ": expected " + expected);
    }
    Result<Annotations> finish(Annotations out) {
        ws();
        if (i_ != s_.size()) return fail("the end after the top-level object");
        return out;
    }

    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
    bool hex4(unsigned& v) {
        if (s_.size() - i_ < 4) return false;
        v = 0;
        for (int k = 0; k < 4; ++k) {
            int h = hex(s_[i_++]);
            if (h < 0) return false;
            v = v * 16 + static_cast<unsigned>(h);
        }
        return true;
    }
    static void utf8(unsigned cp, std::string& out) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    // A string at i_ into out (nullptr: skip it).
    bool string(std::string& out) { return string_to(&out); }
    bool string_to(std::string* out) {
        if (!expect('"')) return false;
        while (i_ < s_.size()) {
            char c = s_[i_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) {
                --i_;
                what_ = "no raw control character in a string";
                return false;
            }
            if (c != '\\') {
                if (out) *out += c;
                continue;
            }
            if (i_ >= s_.size()) break;
            char e = s_[i_++];
            char plain = 0;
            switch (e) {
                case '"':
                    plain = '"';
                    break;
                case '\\':
                    plain = '\\';
                    break;
                case '/':
                    plain = '/';
                    break;
                case 'b':
                    plain = '\b';
                    break;
                case 'f':
                    plain = '\f';
                    break;
                case 'n':
                    plain = '\n';
                    break;
                case 'r':
                    plain = '\r';
                    break;
                case 't':
                    plain = '\t';
                    break;
                case 'u': {
                    unsigned cp;
                    if (!hex4(cp)) {
                        what_ = "4 hex digits after \\u";
                        return false;
                    }
                    if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
                        unsigned lo;
                        if (!expect('\\') || !expect('u') || !hex4(lo) || lo < 0xDC00 ||
                            lo > 0xDFFF) {
                            what_ = "a low surrogate after a high one";
                            return false;
                        }
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        what_ = "no lone low surrogate";
                        return false;
                    }
                    if (out) utf8(cp, *out);
                    continue;
                }
                default:
                    --i_;
                    what_ = "a valid escape";
                    return false;
            }
            if (out) *out += plain;
        }
        what_ = "a closing '\"'";
        return false;
    }
    // An object member's "key" and its ':' (out == nullptr: the key is skipped).
    bool member_key(std::string* out) {
        ws();
        if (peek() != '"') {
            what_ = "a string key";
            return false;
        }
        if (!string_to(out)) return false;
        ws();
        if (!expect(':')) {
            what_ = "':'";
            return false;
        }
        ws();
        return true;
    }
    bool literal(std::string_view word) {
        if (s_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        return true;
    }
    bool number() {
        const size_t start = i_;
        expect('-');
        while (i_ < s_.size() && ((s_[i_] >= '0' && s_[i_] <= '9') || s_[i_] == '.' ||
                                  s_[i_] == 'e' || s_[i_] == 'E' || s_[i_] == '+' || s_[i_] == '-'))
            ++i_;
        return i_ > start && s_[i_ - 1] >= '0' && s_[i_ - 1] <= '9';
    }
    bool skip_value(int depth) {
        if (depth > kMaxDepth) {
            what_ = "nesting no deeper than " + std::to_string(kMaxDepth);
            return false;
        }
        what_ = "a value";
        const char c = peek();
        if (c == '"') return string_to(nullptr);
        if (c == 't') return literal("true");
        if (c == 'f') return literal("false");
        if (c == 'n') return literal("null");
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        if (c != '{' && c != '[') return false;
        const bool object = c == '{';
        const char close = object ? '}' : ']';
        ++i_;
        ws();
        if (expect(close)) return true;
        for (;;) {
            ws();
            if (object && !member_key(nullptr)) return false;
            if (!skip_value(depth + 1)) return false;
            ws();
            if (expect(',')) continue;
            if (expect(close)) return true;
            what_ = object ? "',' or '}'" : "',' or ']'";
            return false;
        }
    }
    bool annotation_object(Annotations& out) {
        out.clear();  // a repeated "annotations" member: the last one counts
        ++i_;         // '{'
        ws();
        if (expect('}')) return true;
        for (;;) {
            std::string k;
            if (!member_key(&k)) return false;
            if (peek() == '"') {
                std::string v;
                if (!string(v)) return false;
                out.emplace_back(std::move(k), std::move(v));
            } else if (!skip_value(2)) {
                return false;
            }
            ws();
            if (expect(',')) continue;
            if (expect('}')) return true;
            what_ = "',' or '}'";
            return false;
        }
    }
};

const std::string* find(const Annotations& a, std::string_view key) {
    const std::string* v = nullptr;
    for (const auto& [k, val] : a)
        if (k == key) v = &val;  // the last one, as in the object
    return v;
}

std::string get(const Annotations& a, std::string_view key) {
    const std::string* v = find(a, key);
    return v ? *v : std::string();
}

}  // namespace

bool is_container_id(std::string_view s) {
    if (s.size() < 12 || s.size() > 128) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

Result<Annotations> parse_oci_annotations(std::string_view json) {
    return Json(json).annotations();
}

RuntimeNames runtime_names_from(const Annotations& a, std::string source) {
    // Each runtime's own keys first (containerd's pkg/cri/annotations; CRI-O
    // copies kubelet's labels), then the other's: CRI-O may also carry
    // io.kubernetes.cri.container-type for crun, so no key decides the runtime.
    const bool crio = source == "cri-o";
    auto pick = [&](std::string_view containerd_key, std::string_view crio_key) {
        std::string v = get(a, crio ? crio_key : containerd_key);
        return v.empty() ? get(a, crio ? containerd_key : crio_key) : v;
    };
    RuntimeNames n;
    n.source = std::move(source);
    n.container = pick("io.kubernetes.cri.container-name", "io.kubernetes.container.name");
    n.pod_name = pick("io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name");
    n.pod_namespace = pick("io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace");
    n.pod_uid = pick("io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid");
    n.sandbox =
        pick("io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType") == "sandbox";
    // A sandbox has no container name (CRI-O labels its infra container "POD").
    if (n.sandbox) n.container.clear();
    return n;
}

std::string RuntimeStateReader::containerd_config(std::string_view id) const {
    return roots_.containerd + "/io.containerd.runtime.v2.task/k8s.io/" + std::string(id) +
           "/config.json";
}

std::string RuntimeStateReader::crio_config(std::string_view id) const {
    return roots_.crio + "/overlay-containers/" + std::string(id) + "/userdata/config.json";
}

Result<RuntimeNames> RuntimeStateReader::lookup(std::string_view id) const {
    // The id becomes a path component: only lowercase hex ids, never "../x".
    if (!is_container_id(id))
        return Error::logic("'" + std::string(id.substr(0, 64)) + "' is not a container id");
    struct Source {
        const char* name;
        std::string path;
    };
    const Source sources[] = {
        {"containerd", roots_.containerd.empty() ? "" : containerd_config(id)},
        {"cri-o", roots_.crio.empty() ? "" : crio_config(id)}};
    std::string missing;
    for (const auto& s : sources) {
        if (s.path.empty()) continue;
        auto text = read_small_file(s.path, kMaxConfigBytes);
        if (!text) {
            if (text.error().code == ENOENT || text.error().code == ENOTDIR) {
                missing += (missing.empty() ? "" : ", ") + s.path;
                continue;
            }
            return text.error();  // there, but unreadable or too large: say so
        }
        auto a = parse_oci_annotations(*text);
        if (!a) return Error::logic(s.path + ": " + a.error().message);
        return runtime_names_from(*a, s.name);
    }
    return Error{ENOENT,
                 "no runtime bundle for " + std::string(id.substr(0, 12)) +
                     (missing.empty() ? " (no runtime state roots)" : " (" + missing + ")")};
}

}  // namespace oomguard
