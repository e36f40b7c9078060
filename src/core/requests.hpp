// What an adapter (the D-Bus thread) may ask the daemon's loop to do. The loop
// performs each request at its own level, exactly like SIGHUP, never from
// inside an adapter's callback, and posts the result back.
#pragma once

#include <cstdint>
#include <optional>

#include "util/result.hpp"

namespace oomguard {

enum class RequestKind { Reload };

struct Request {
    uint64_t id = 0;  // chosen by the requester, echoed in the result
    RequestKind kind = RequestKind::Reload;
};

struct RequestResult {
    uint64_t id = 0;
    std::optional<Error> error;  // why it failed (the old config stays)
    bool ok() const { return !error; }
};

}  // namespace oomguard
