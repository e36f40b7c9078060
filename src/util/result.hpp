// Result<T>: errors are values inside the core. An Error carries errno (0 when
// the error is not a system error) and a human-readable context string.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace oomguard {

struct Error {
    int code = 0;         // errno, or 0 for a logical error
    std::string message;  // names what is wrong, e.g. "/proc/meminfo: no MemAvailable line"

    static Error sys(int err, std::string context) {
        return Error{err, std::move(context) + ": " + std::strerror(err)};
    }
    static Error logic(std::string message) { return Error{0, std::move(message)}; }
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

struct Ok {};

// Result<void> equivalent.
using Status = Result<Ok>;
inline Status ok_status() { return Status(Ok{}); }

}  // namespace oomguard
