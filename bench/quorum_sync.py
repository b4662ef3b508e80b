"""The cost of zab's quorum_sync: sync + getData ("syncget") and plain
getData against a 3-server corrald ensemble on loopback, with the option
off and on, in alternating rounds (./dev bench quorum-sync).

    ./dev bench quorum-sync [--rounds 3] [--duration 5] [--sessions 16] [--depth 8]
"""
import argparse
import json
import os
import pathlib
import subprocess
import tempfile

from corral_harness.ensemble import Ensemble

REPO = pathlib.Path(__file__).resolve().parents[1]
BENCH = os.environ.get("CORRAL_BENCH", str(REPO / "build/bench/corral-bench"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--depth", type=int, default=8)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="corral-qs-") as tmp:
        for rnd in range(args.rounds):
            for on in (False, True):
                extra = ["--set", "consensus.zab.quorum_sync=true"] if on else []
                ens = Ensemble(pathlib.Path(tmp) / f"r{rnd}-{on}", voters=3, tick_ms=2000, extra_args=extra)
                try:
                    ens.start(60)
                    for wl in ("syncget", "get"):
                        out = subprocess.run(
                            [BENCH, "--hosts", ens.hosts(), "--workload", wl, "--sessions", str(args.sessions),
                             "--depth", str(args.depth), "--duration", str(args.duration), "--json", "--quiet",
                             "--keys", "1000"], stdout=subprocess.PIPE, text=True, check=True).stdout
                        r = json.loads(out.strip().splitlines()[-1])
                        results.setdefault((wl, on), []).append(r)
                        print(f"round {rnd + 1}: {wl} quorum_sync={'on' if on else 'off'}: "
                              f"{r['ops_per_sec']:.0f} ops/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms", flush=True)
                finally:
                    ens.close()

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    print(f"\nmedians of {args.rounds} rounds ({args.sessions} sessions x {args.depth} in flight, "
          "spread over the 3 servers):")
    print("| workload | quorum_sync off | on | ratio on/off | p99 off | p99 on |")
    print("| --- | --- | --- | --- | --- | --- |")
    for wl in ("syncget", "get"):
        off = median([r["ops_per_sec"] for r in results[(wl, False)]])
        on = median([r["ops_per_sec"] for r in results[(wl, True)]])
        p_off = median([r["p99_ms"] for r in results[(wl, False)]])
        p_on = median([r["p99_ms"] for r in results[(wl, True)]])
        print(f"| {wl} | {off:,.0f} ops/s | {on:,.0f} ops/s | {on / off:.2f} | {p_off} ms | {p_on} ms |")


if __name__ == "__main__":
    main()
