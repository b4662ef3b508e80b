"""Tables of many fault runs: python3 -m faults.summary DIR [DIR...]

Reads every verdict.json under the folders and prints, per target and
ensemble size, the runs, their seconds of faults, operations (ok, fail,
info), faults injected by kind, violations by checker, servers that exited
by themselves, stale reads without quorum sync, recovery times, watch
notifications checked, and the registry's agreement after each heal."""
import json
import pathlib
import sys


def load(dirs):
    for d in dirs:
        for p in sorted(pathlib.Path(d).glob("**/verdict.json")):
            try:
                v = json.loads(p.read_text())
            except ValueError:
                continue
            v["_path"] = str(p.parent)
            yield v


def main(argv=None):
    dirs = (argv if argv is not None else sys.argv[1:]) or ["build/faults"]
    groups = {}
    for v in load(dirs):
        key = (v["target"] + (" +quorum_sync" if v.get("quorum_sync") else ""), v["nodes"])
        groups.setdefault(key, []).append(v)
    checkers = ("register", "set", "sequential", "ephemeral", "mutex", "watch", "registry")
    print("| target | servers | runs | seconds | ok | fail | info | valid | violations | did not recover | "
          "exited (restarted) | stale reads (runs) | recovery s (max) | watch notifications checked | "
          "registry heals agreed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    faults = {}
    for (target, nodes), runs in sorted(groups.items()):
        ops = {k: sum(r.get("ops", {}).get(k, 0) for r in runs) for k in ("ok", "fail", "info")}
        violations = {}
        for r in runs:
            for c in checkers:
                if (r.get(c) or {}).get("valid") is False:
                    violations[c] = violations.get(c, 0) + 1
            if any(not q["valid"] for q in r.get("registry_heals") or []):
                violations["registry (mid-run heal)"] = violations.get("registry (mid-run heal)", 0) + 1
            for k, n in (r.get("faults") or {}).items():
                faults[k] = faults.get(k, 0) + n
        stale = sum(1 for r in runs if (r.get("register_reads") or {}).get("valid") is False
                    and not r.get("quorum_sync"))
        unrecovered = sum(1 for r in runs if r.get("recovered") is False)
        exits = sum(len(r.get("exits") or []) for r in runs)
        rec = [r["recovery_seconds"] for r in runs if "recovery_seconds" in r]
        watched = [r["watch"] for r in runs if r.get("watch")]
        told = sum(w.get("told", 0) for w in watched if w.get("valid") is not None)
        blind = sum(1 for w in watched if w.get("valid") is None)
        watch = f"{told:,}" + (f" ({blind} runs unchecked: no zxid in notifications)" if blind else "")
        heals = [q for r in runs for q in (r.get("registry_heals") or [])] + [r["registry"] for r in runs
                                                                            if r.get("registry")]
        agreed = f"{sum(1 for q in heals if q['valid'])} of {len(heals)}" if heals else "-"
        print(f"| {target} | {nodes} | {len(runs)} | {sum(r['time'] for r in runs):.0f} | {ops['ok']:,} | "
              f"{ops['fail']:,} | {ops['info']:,} | {sum(1 for r in runs if r['valid'])} | "
              f"{', '.join(f'{k} {n}' for k, n in violations.items()) or 'none'} | {unrecovered} | {exits} | "
              f"{stale} | {max(rec) if rec else '-'} | {watch} | {agreed} |")
    print("\nfaults injected: " + ", ".join(f"{k} {n}" for k, n in sorted(faults.items())))
    bad = [v for v in load(dirs) if not v["valid"]]
    for v in bad:
        why = v.get("error", "").strip().splitlines()[-1:] or [""]
        failed = [c for c in checkers if (v.get(c) or {}).get("valid") is False]
        detail = ", ".join(failed)
        if (v.get("set") or {}).get("diverged"):
            detail += f" (servers {v['set']['diverged']} list another set at the same zxid)"
        digests = {k: n for k, n in (v.get("zk_digest_mismatches") or {}).items() if n}
        if digests:
            detail += f"; ZooKeeper's digest check logged mismatches on servers {digests}"
        print(f"invalid: {v['_path']}: {detail} {why[0][:200]}".rstrip())


if __name__ == "__main__":
    main()
