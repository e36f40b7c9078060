#include "app/prediction_fields.hpp"

namespace oomguard {

bool prediction_fresh(const PredictedTask& p, Duration now) {
    return p.pid > 0 && now >= p.at && now - p.at <= kPredictionFresh;
}

std::string describe_prediction(const PredictedTask& p) {
    std::string s = "pid " + std::to_string(p.pid) + " (" + p.comm + ")";
    const CgroupRef& c = p.cgroup;
    if (!c.pod().empty()) {
        s += " of pod " + (c.pod_namespace.empty() ? "" : c.pod_namespace + "/") + c.pod();
        if (const std::string name = c.container(); !name.empty()) s += ", container " + name;
        if (!c.qos.empty()) s += " (" + c.qos + ")";
    } else if (!c.path.empty()) {
        s += " in " + c.path;
    }
    s += ", oom_score " + std::to_string(p.oom_score);
    if (p.tied) s += " (tied)";
    return s;
}

void append_prediction(const PredictedTask& p, Duration now, std::string& message,
                       std::vector<LogField>& fields) {
    if (!prediction_fresh(p, now)) {
        fields.push_back({"OOMGUARD_PREDICTED", "none"});
        return;
    }
    message += "; the kernel's likely victim: " + describe_prediction(p);
    const CgroupRef& c = p.cgroup;
    fields.push_back({"OOMGUARD_PREDICTED_PID", std::to_string(p.pid)});
    fields.push_back({"OOMGUARD_PREDICTED_COMM", p.comm});
    fields.push_back({"OOMGUARD_PREDICTED_OOM_SCORE", std::to_string(p.oom_score)});
    fields.push_back({"OOMGUARD_PREDICTED_CGROUP", c.path});
    if (!c.pod().empty()) {
        fields.push_back({"OOMGUARD_PREDICTED_POD_NAMESPACE", c.pod_namespace});
        fields.push_back({"OOMGUARD_PREDICTED_POD_NAME", c.pod()});
        fields.push_back({"OOMGUARD_PREDICTED_CONTAINER_NAME", c.container_name});
    }
    fields.push_back(
        {"OOMGUARD_PREDICTED_AGE_USEC",
         std::to_string(
             std::chrono::duration_cast<std::chrono::microseconds>(now - p.at).count())});
}

}  // namespace oomguard
