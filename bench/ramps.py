"""Benchmarks on real memory (bench/run.py): an oomg_ramp allocating towards
the threshold against a fresh daemon per episode. Groups latency, spikes,
journal (journald stalled) and tune (oomguard by assumed fill_rate)."""

import time

from common import MiB, mem_available_kib, summarize_episodes, summary
from harness import FakeJournald


class RampBenches:
    """Mixin on Harness."""

    def wait_memory_settled(self, target_kib, timeout=3.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and mem_available_kib() < target_kib:
            time.sleep(0.02)

    def episode(self, daemon, rate_mbps, below_kib, hold_ms, poll=None, binary=None, stall_journal=False):
        """One ramp against one freshly started daemon. Returns the ramp's JSON
        plus 'valid'/'why'."""
        start = mem_available_kib()
        threshold = start - 512 * MiB
        floor = threshold - below_kib
        ramp_argv = [self.ramp, "--threshold-kib", str(threshold), "--floor-kib", str(floor),
                     "--rate-mbps", str(rate_mbps), "--chunk-kib", "256",
                     "--max-mib", str(min(4096, (512 * MiB + below_kib) // MiB + 512)),
                     "--hold-ms", str(hold_ms), "--timeout-ms", "15000", "--wait-go"]

        def start_daemon():
            if daemon == "oomguard":
                return self.start_oomguard(self.oomguard_config(threshold, self.fifo, poll=poll), binary=binary,
                                           log_target="journal" if stall_journal else "stderr")
            return self.start_earlyoom(self.earlyoom_argv(threshold))

        def before_go():
            if stall_journal:
                self.journald.stall()

        def after_go():
            if stall_journal:
                self.journald.resume()

        res = self.ramp_episode(daemon, ramp_argv, start_daemon, before_go, after_go)
        if not res["crossed"]:
            res["valid"], res["why"] = False, f"never crossed ({res['end']}): other memory users moved MemAvailable"
        elif res["t_action_ns"] == 0:
            res["valid"], res["why"] = False, "no action within the hold time"
        elif res["t_action_ns"] < res["t_cross_ns"] - 2_000_000:
            res["valid"], res["why"] = False, "acted before the ramp crossed: other memory users"
        self.wait_memory_settled(start - 128 * MiB)
        time.sleep(0.2)
        return res

    def run_episodes(self, label, rate_mbps, below_kib, hold_ms, n, daemons=("oomguard", "earlyoom"),
                     poll=None, keep_no_action=False):
        """n valid episodes per daemon, interleaved (the order alternates), with
        a bounded number of retries for episodes spoiled by other memory users."""
        got = {d: [] for d in daemons}
        discarded = {d: [] for d in daemons}
        attempts = 0
        i = 0
        while any(len(got[d]) < n for d in daemons) and attempts < 3 * n * len(daemons):
            order = list(daemons) if i % 2 == 0 else list(reversed(daemons))
            i += 1
            for d in order:
                if len(got[d]) >= n:
                    continue
                attempts += 1
                res = self.episode(d, rate_mbps, below_kib, hold_ms, poll=poll)
                ok = res["valid"] or (keep_no_action and res["crossed"] and res["t_action_ns"] == 0)
                (got[d] if ok else discarded[d]).append(res)
                lat = res["latency_us"] / 1000
                print(f"  {label} {d:9s} #{len(got[d]):2d} latency {lat:8.2f} ms rate {res['rate_mbps']:7.0f} MB/s"
                      f" end={res['end']}{'' if ok else ' DISCARDED: ' + res['why']}", flush=True)
        return got, discarded

    def bench_latency(self):
        n = self.args.episodes
        out = {}
        for label, rate in (("1GB/s", 1000), ("fastest", 0)):
            print(f"latency, ramp {label}", flush=True)
            # The floor is far below the threshold so that both daemons act before it.
            got, disc = self.run_episodes(label, rate, 1536 * MiB, 2000, n)
            out[label] = summarize_episodes(got, disc)
        self.results["latency"] = out

    def bench_spikes(self):
        n = self.args.episodes
        print("spikes, fastest ramp, 256 MiB between threshold and floor", flush=True)
        got, disc = self.run_episodes("spike", 0, 256 * MiB, 500, n, keep_no_action=True)
        self.results["spikes"] = summarize_episodes(got, disc)

    def bench_journal(self):
        """journald stalls (as it can under memory pressure): its socket queue is
        full and sd_journal_send() blocks. Does the trigger still go out?"""
        n = max(5, self.args.episodes // 4)
        self.journald = FakeJournald(self.args.host_mnt_ns)
        out = {}
        variants = [("this build", None)]
        if self.args.compare_oomguard:
            variants.append((f"compare: {self.args.compare_oomguard}", self.args.compare_oomguard))
        try:
            for label, binary in variants:
                print(f"stalled journald, 1GB/s ramp: {label}", flush=True)
                eps = []
                for i in range(n):
                    res = self.episode("oomguard", 1000, 1536 * MiB, 2000, binary=binary, stall_journal=True)
                    eps.append(res)
                    lat = res["latency_us"] / 1000
                    print(f"  #{i + 1} {'acted' if res['t_action_ns'] else 'NO ACTION'} latency {lat:.2f} ms",
                          flush=True)
                acted = [e for e in eps if e["crossed"] and e["t_action_ns"]]
                out[label] = {"episodes": len(eps), "acted": len(acted),
                              "latency_ms": summary([e["latency_us"] / 1000 for e in acted]), "raw": eps}
        finally:
            self.journald.close()
        self.results["journal"] = out

    def bench_tune(self):
        """Latency at the fastest ramp for several assumed fill rates."""
        n = max(5, self.args.episodes // 2)
        out = {}
        for fill in self.args.tune_fill_rates.split(","):
            label = f"fill_rate {fill}"
            print(f"tune: {label}", flush=True)
            got, disc = self.run_episodes(label, 0, 1536 * MiB, 2000, n, daemons=("oomguard",),
                                          poll={"fill_rate": fill})
            out[fill] = summarize_episodes(got, disc)["oomguard"]
        self.results["tune"] = out
