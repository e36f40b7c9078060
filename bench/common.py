"""Constants and small helpers shared by the bench modules (bench/run.py):
the host's meminfo, quantiles and the per-daemon episode summary."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1024  # in KiB

ALL = ["unit", "startup", "idle", "latency", "spikes", "fakespikes", "fakeidle", "journal", "hover", "psi", "tune"]

# The fake node of the fakespikes/fakeidle benches (issue 17): one meminfo file
# that both daemons read, oomguard through --proc-root, earlyoom through a bind
# mount over /proc/meminfo in a mount namespace of its own.
FAKE_TOTAL = 32 * 1024 * MiB
FAKE_THRESHOLD = 1024 * MiB


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def meminfo_kib(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/meminfo")


def mem_available_kib():
    return meminfo_kib("MemAvailable")


def mem_total_kib():
    return meminfo_kib("MemTotal")


def quantile(values, q):
    v = sorted(values)
    if not v:
        return float("nan")
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summary(values):
    return {
        "n": len(values),
        "p50": quantile(values, 0.5),
        "p95": quantile(values, 0.95),
        "max": max(values) if values else float("nan"),
        "min": min(values) if values else float("nan"),
    }


def summarize_episodes(got, disc):
    s = {}
    for d, eps in got.items():
        acted = [e for e in eps if e["t_action_ns"]]
        lat_ms = [e["latency_us"] / 1000 for e in acted]
        # How far below the threshold memory was when the action arrived.
        over_mib = [(e["threshold_kib"] - e["end_kib"]) / 1024 for e in acted if e["end"] == "action"]
        s[d] = {
            "latency_ms": summary(lat_ms),
            "overshoot_mib": summary(over_mib) if over_mib else None,
            "rate_mbps": summary([e["rate_mbps"] for e in eps]),
            "before_floor": sum(1 for e in eps if e["t_action_ns"] and not e["floor_first"]),
            "episodes": len(eps),
            "discarded": len(disc[d]),
            "discard_reasons": sorted({e["why"] for e in disc[d]}),
            "discarded_raw": disc[d],
            "raw": eps,
        }
    return s
