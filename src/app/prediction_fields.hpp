// The predicted victim in the trigger entry (issue 14): journal fields and a
// clause for the message, from the prediction the daemon holds. A prediction
// older than kPredictionFresh is not used (the predictor scans only below the
// warning level; an old one may name a task long gone).
#pragma once

#include <string>
#include <vector>

#include "core/log.hpp"
#include "core/prediction.hpp"

namespace oomguard {

inline constexpr Duration kPredictionFresh = std::chrono::seconds(10);

bool prediction_fresh(const PredictedTask& p, Duration now);
// "pid 4242 (hog) of pod shop/web-1, container web (BestEffort), oom_score 1100"
std::string describe_prediction(const PredictedTask& p);
// OOMGUARD_PREDICTED_{PID,COMM,OOM_SCORE,CGROUP,POD_NAMESPACE,POD_NAME,CONTAINER_NAME,AGE_USEC}
// and `; the kernel's likely victim: ...` in `message`; or OOMGUARD_PREDICTED=none.
void append_prediction(const PredictedTask& p, Duration now, std::string& message,
                       std::vector<LogField>& fields);

}  // namespace oomguard
