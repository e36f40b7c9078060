// A non-blocking check that the bus daemon answers: connect to its socket and
// send the first line of the D-Bus authentication (SASL EXTERNAL), then wait
// for "OK" in the daemon's poll() loop. sd-bus opens connections blockingly (the
// handshake may wait up to its 90 s auth timeout on a frozen bus daemon); after
// a fresh answer here it completes in milliseconds, so the hot path never waits.
#pragma once

#include <sys/types.h>

#include <string>

#include "util/result.hpp"

namespace oomguard {

class BusProbe {
public:
    BusProbe() = default;
    ~BusProbe() { close(); }
    BusProbe(const BusProbe&) = delete;
    BusProbe& operator=(const BusProbe&) = delete;

    // Connects without blocking and sends "\0AUTH EXTERNAL <hex uid>\r\n".
    Status start(const std::string& socket_path, uid_t uid);
    bool active() const { return fd_ >= 0; }
    int fd() const { return fd_; }

    enum class Step { Pending, Answered };
    // After poll() reported revents on fd(): Answered on "OK <guid>", an Error
    // on a rejection or hang-up, else Pending.
    Result<Step> advance(short revents);
    void close();

private:
    int fd_ = -1;
    std::string path_;
    std::string reply_;
};

}  // namespace oomguard
