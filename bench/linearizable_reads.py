"""The cost of linearizable reads (server.linearizable_reads: every read
waits for a sync first) on a 3-server corrald ensemble on loopback:
getData, and sync + getData ("syncget"), with sessions spread over the
three servers, on raft (whose sync is a ReadIndex) and on zab with
quorum_sync, each with the option off and on, in alternating rounds
(./dev bench linearizable-reads).

    ./dev bench linearizable-reads [--rounds 3] [--duration 5] [--sessions 16] [--depth 8]
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

CONFIGS = {
    "raft": ["--set", "plugins.consensus=raft"],
    "raft, linearizable reads": ["--set", "plugins.consensus=raft", "--set", "server.linearizable_reads=true"],
    "zab, quorum_sync": ["--set", "plugins.consensus=zab", "--set", "consensus.zab.quorum_sync=true"],
    "zab, quorum_sync, linearizable reads": ["--set", "plugins.consensus=zab", "--set",
                                             "consensus.zab.quorum_sync=true", "--set",
                                             "server.linearizable_reads=true"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    results = {}
    names = list(CONFIGS)
    with tempfile.TemporaryDirectory(prefix="corral-lin-") as tmp:
        for rnd in range(args.rounds):
            for name in names if rnd % 2 == 0 else names[::-1]:
                ens = Ensemble(pathlib.Path(tmp) / f"r{rnd}-{names.index(name)}", voters=3, tick_ms=2000,
                               peer_auth=False, extra_args=CONFIGS[name])
                try:
                    ens.start(60)
                    for wl in ("get", "syncget"):
                        out = subprocess.run(
                            [BENCH, "--hosts", ens.hosts(), "--workload", wl, "--sessions", str(args.sessions),
                             "--depth", str(args.depth), "--duration", str(args.duration), "--json", "--quiet",
                             "--keys", "1000"], stdout=subprocess.PIPE, text=True, check=True).stdout
                        r = json.loads(out.strip().splitlines()[-1])
                        results.setdefault(f"{wl}|{name}", []).append(r)
                        print(f"round {rnd + 1}: {wl} on {name}: {r['ops_per_sec']:.0f} ops/s, "
                              f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms", flush=True)
                finally:
                    ens.close()

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    print(f"\nmedians of {args.rounds} rounds ({args.sessions} sessions x {args.depth} in flight, "
          "spread over the 3 servers):")
    print("| workload | configuration | ops/s | p50 ms | p99 ms | ops/s vs option off |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for wl in ("get", "syncget"):
        for name in names:
            rs = results[f"{wl}|{name}"]
            ops = median([r["ops_per_sec"] for r in rs])
            base = name.replace(", linearizable reads", "")
            ratio = ops / median([r["ops_per_sec"] for r in results[f"{wl}|{base}"]])
            print(f"| {wl} | {name} | {ops:,.0f} | {median([r['p50_ms'] for r in rs])} | "
                  f"{median([r['p99_ms'] for r in rs])} | {ratio:.2f} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
