// Fuzzes the /var/log/pods name parsers (parse_pod_log_dir,
// parse_container_log_name). Invariants:
//  - "<ns>_<name>_<uid>": accepted exactly when the input has two '_' and three
//    non-empty parts (a plain std::string reference decides), and the parts
//    join back to the input;
//  - "<pod>_<ns>_<container>-<id>.log": an accepted name joins back to the
//    input, no part holds '_', the id is 12..128 lowercase hex digits, and the
//    reference (split at the last '-', then on '_') agrees on acceptance.
#include <cstdint>
#include <string>
#include <vector>

#include "cgroup/pod_names.hpp"
#include "fuzz_check.hpp"

using namespace oomguard;

namespace {

std::vector<std::string> split_underscore(const std::string& s) {
    std::vector<std::string> parts(1);
    for (char c : s) {
        if (c == '_')
            parts.emplace_back();
        else
            parts.back() += c;
    }
    return parts;
}

bool three_nonempty(const std::vector<std::string>& p) {
    return p.size() == 3 && !p[0].empty() && !p[1].empty() && !p[2].empty();
}

bool reference_container_log(const std::string& s) {
    if (s.size() < 4 || s.compare(s.size() - 4, 4, ".log") != 0) return false;
    const std::string stem = s.substr(0, s.size() - 4);
    const size_t dash = stem.rfind('-');
    if (dash == std::string::npos) return false;
    const std::string id = stem.substr(dash + 1);
    if (id.size() < 12 || id.size() > 128) return false;
    for (char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return three_nonempty(split_underscore(stem.substr(0, dash)));
}

bool no_underscore(const std::string& s) { return s.find('_') == std::string::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    const std::string s(text);

    auto dir_r = parse_pod_log_dir(text);
    const bool dir_ok = dir_r.ok();
    FUZZ_CHECK(dir_ok || !dir_r.error().message.empty(), fuzz::quote(text));
    const PodLogDir dir = dir_ok ? *dir_r : PodLogDir{};
    FUZZ_CHECK(dir_ok == three_nonempty(split_underscore(s)), fuzz::quote(text));
    if (dir_ok) {
        FUZZ_CHECK(dir.namespace_ + "_" + dir.name + "_" + dir.uid == s,
                   fuzz::quote(text) + " -> " + fuzz::quote(dir.namespace_) + " " +
                       fuzz::quote(dir.name) + " " + fuzz::quote(dir.uid));
        FUZZ_CHECK(
            no_underscore(dir.namespace_) && no_underscore(dir.name) && no_underscore(dir.uid),
            fuzz::quote(text));
    }

    auto link_r = parse_container_log_name(text);
    const bool link_ok = link_r.ok();
    FUZZ_CHECK(link_ok || !link_r.error().message.empty(), fuzz::quote(text));
    const ContainerLogLink link = link_ok ? *link_r : ContainerLogLink{};
    FUZZ_CHECK(link_ok == reference_container_log(s), fuzz::quote(text));
    if (link_ok) {
        const std::string joined = link.pod_name + "_" + link.namespace_ + "_" + link.container +
                                   "-" + link.container_id + ".log";
        FUZZ_CHECK(joined == s, fuzz::quote(text) + " -> " + fuzz::quote(joined));
        FUZZ_CHECK(no_underscore(link.pod_name) && no_underscore(link.namespace_) &&
                       no_underscore(link.container) && !link.pod_name.empty() &&
                       !link.namespace_.empty() && !link.container.empty(),
                   fuzz::quote(text));
        FUZZ_CHECK(link.container_id.size() >= 12 && link.container_id.size() <= 128 &&
                       link.container_id.find('-') == std::string::npos,
                   fuzz::quote(text));
    }
    return 0;
}
