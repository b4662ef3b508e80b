"""One command for fault runs (./dev faults):

    ./dev faults [--time S] [--nodes 3|5] [--nemesis all|a,b,...] [--seed N]
                 [--runs K] [--target corrald|zookeeper] [--out DIR]

Each run starts an ensemble whose servers live in their own network
namespaces (network.py), drives it with clients (workload.py) while the
nemesis (nemesis.py) injects faults, heals everything, waits for the
ensemble to serve again, reads what every server holds, and checks the
history (checker.py). A run's folder keeps the history (history.jsonl),
the verdict (verdict.json), a timeline (timeline.svg) and every server's
log. The exit status is 0 only when every run is valid.
"""
import argparse
import json
import os
import pathlib
import subprocess
import random
import sys
import time
import traceback

from corral_harness.ensemble import Ensemble
from corral_harness.net import four_letter
from faults import checker, report, workload
from faults.history import History
from faults.nemesis import NEMESES, Nemesis
from faults.network import Network, netem_available

REPO = pathlib.Path(__file__).resolve().parents[2]
FAULTY_FSYNC = os.environ.get("CORRAL_FAULTY_FSYNC", str(REPO / "build/tests/libcorral-faulty-fsync.so"))
DATA_MB = 256  # each server's data folder is a tmpfs this big (the disk-full nemesis fills it)


def available_nemeses():
    """Every nemesis this machine can inject (delay needs netem.cpp built,
    fsync-fail faulty_fsync.cpp)."""
    missing = {}
    if netem_available():
        missing["delay"] = netem_available()
    if not os.path.exists(FAULTY_FSYNC):
        missing["fsync-fail"] = f"{FAULTY_FSYNC} is not built"
    for kind, why in missing.items():
        print(f"faults: no {kind} nemesis: {why}", file=sys.stderr)
    return tuple(k for k in NEMESES if k not in missing)


def _mount_data(workdir, nodes, mounted):
    """Each server's data folder on its own small tmpfs (each one, as it
    is made, in `mounted`, for the caller to unmount whatever happens)."""
    for sid in range(1, nodes + 1):
        d = workdir / f"server{sid}" / "data"
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DATA_MB}m", "tmpfs", str(d)], check=True)
        mounted.append(d)
    return mounted


def _registry_converges(ens, history, workers, timeout=30.0, resume=False):
    """After a heal, the registry's clients only renew; within `timeout`
    every server must list the same instances (read with ?consistent),
    among them every instance renewed since. With resume, the clients go
    back to registering anew afterwards (a heal in the middle of a run)."""
    regs = [w for w in workers if w.workload == "registry"]
    for w in regs:
        w.settled.set()
    try:
        return _agreement(ens, history, regs, timeout)
    finally:
        if resume:
            for w in regs:
                w.settled.clear()


def _agreement(ens, history, regs, timeout):
    settled = history.now()
    hosts = {m.sid: f"{m.host}:8080" for m in ens.members}
    views = {}
    while history.now() - settled < timeout:
        views = workload.registry_views(hosts)
        live = {w.instance for w in regs if w.instance and w.renewed_at and w.renewed_at > settled + 1}
        first = next(iter(views.values()))
        if (None not in views.values() and all(v == first for v in views.values())
                and live <= set(first) and len(live) == len(regs)):
            return {"valid": True, "seconds": round(history.now() - settled, 2), "instances": len(first)}
        time.sleep(0.5)
    return {"valid": False, "error": f"no agreement within {timeout} s", "views": views,
            "renewing": sorted(w.instance or "-" for w in regs)}


def _zxids(ens):
    out = {}
    for m in ens.members:
        try:
            for line in four_letter(m.host, m.port, "srvr", timeout=2.0).splitlines():
                if line.startswith("Zxid:"):
                    out[m.sid] = line.split(":", 1)[1].strip()
        except OSError:
            out[m.sid] = None
    return out


def run_once(workdir, seed, duration=60.0, nodes=3, nemeses=NEMESES, target="corrald", clients=14,
             quorum_sync=False, log=print, consensus="zab", linearizable_reads=False):
    """One run; returns its verdict. With quorum_sync (corrald's zab
    option), or on corrald's raft (whose sync is always a quorum round), the
    register check includes reads: sync + read must then be linearizable.
    Without it, stale reads are counted, not failed: a leader's sync is not
    a quorum round in ZooKeeper's design. With linearizable_reads (corrald's
    server option) a register read is a plain getData, checked the same."""
    if (quorum_sync or consensus != "zab" or linearizable_reads) and target != "corrald":
        raise ValueError("quorum_sync, raft and linearizable reads are corrald's")
    if linearizable_reads and not (quorum_sync or consensus == "raft"):
        raise ValueError("linearizable reads need a quorum sync: raft, or zab's quorum_sync")
    # What the register check holds reads to.
    quorum_reads = quorum_sync or consensus == "raft"
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    history = History()
    verdict = {"seed": seed, "target": target, "nodes": nodes, "time": duration, "valid": False,
               "quorum_sync": quorum_reads, "consensus": consensus if target == "corrald" else "zab",
               "linearizable_reads": linearizable_reads}
    key_period = 5.0
    net = Network(nodes)
    ens = None
    workers = []
    watchers = []
    mounted = []
    nemesis = None
    try:
        _mount_data(workdir, nodes, mounted)
        # Log files of 1 MiB rather than 64, so that a full disk is met
        # within seconds (corrald's segment_bytes, ZooKeeper's preAllocSize).
        extra = ["--set", "storage.wal.segment_bytes=1048576"]
        registry = target == "corrald"
        if registry:  # the service registry on each server's admin port (8080 in its namespace)
            extra += ["--set", 'plugins.recipes=["service-registry"]', "--set", "server.admin_address=0.0.0.0:8080",
                      "--set", "recipe.service-registry.anonymous_writes=true"]
        if quorum_sync:
            extra += ["--set", "consensus.zab.quorum_sync=true"]
        if target == "corrald":
            extra += ["--set", f"plugins.consensus={consensus}"]
        if linearizable_reads:
            extra += ["--set", "server.linearizable_reads=true"]
        env = {"LD_PRELOAD": FAULTY_FSYNC} if "fsync-fail" in nemeses else {}
        ens = Ensemble(workdir, voters=nodes, network=net, target=target, extra_args=extra, extra_env=env,
                       extra_cfg="preAllocSize=1024\n" if target == "zookeeper" else "")
        ens.start(timeout=90)
        hosts_of = {}
        for m in ens.members:
            others = [x.address for x in ens.members if x is not m]
            hosts_of[m.sid] = ",".join([m.address] + others)
        workload.prepare(ens.hosts(), duration + 30, key_period)
        kinds = ["register", "set", "registry", "sequential", "mutex", "register", "ephemeral", "register",
                 "set", "mutex", "registry", "sequential", "ephemeral", "register"]
        if not registry:
            kinds = ["register" if k == "registry" else k for k in kinds]
        history.t0 = time.monotonic()
        for i in range(clients):
            sid = ens.members[i % nodes].sid
            workers.append(workload.Worker(history, kinds[i % len(kinds)], hosts_of[sid], rng.random(),
                                           key_period=key_period,
                                           http_host=f"{ens.members[i % nodes].host}:8080",
                                           sync_reads=not linearizable_reads))
        for i in range(min(2, nodes)):  # persistent recursive watches, each on a session of its own
            order = ens.members[i:] + ens.members[:i]
            watchers.append(workload.Watcher(history, [(m.host, m.port) for m in order]))
        for w in workers + watchers:
            w.start()
        def quiet():
            # Servers the nemesis just started again get the time the final
            # check gives them.
            try:
                ens.wait_serving(timeout=60)
            except RuntimeError:
                pass  # the agreement check says what is wrong
            return _registry_converges(ens, history, workers, resume=True)

        quiet = quiet if registry else None
        nemesis = Nemesis(ens, net, history, nemeses, rng.random(), quiet_every=20.0, on_quiet=quiet)
        nemesis.start()
        time.sleep(duration)
        nemesis.stop()
        nemesis.join(60)
        if nemesis.is_alive():
            raise RuntimeError("the nemesis did not stop within 60 s")
        verdict["faults"] = nemesis.counts
        if registry:
            verdict["registry_heals"] = nemesis.quiet
        verdict["exits"] = nemesis.exits
        if nemesis.error:
            raise RuntimeError(f"nemesis failed: {nemesis.error!r}")
        healed = history.now()
        try:
            ens.wait_serving(timeout=60)
            verdict["recovered"] = True
            verdict["recovery_seconds"] = round(history.now() - healed, 2)
        except RuntimeError as e:
            verdict["recovered"] = False
            verdict["error"] = str(e)[:2000]
        time.sleep(3)  # the clients see the healed ensemble for a moment
        if registry and verdict["recovered"]:
            verdict["registry"] = _registry_converges(ens, history, workers)
        for w in workers + watchers:
            w.stop()
        for w in workers + watchers:
            w.join(30)
        for op in history.ops:
            if op["status"] is None:
                history.complete(op, "info", error="unfinished")
        if not verdict["recovered"]:
            return verdict
        final = workload.final_listing({m.sid: m.address for m in ens.members})
        zxids = {}
        for _ in range(40):
            zxids = _zxids(ens)
            if len(set(zxids.values())) == 1 and None not in zxids.values():
                break
            time.sleep(0.25)
        verdict["converged"] = len(set(zxids.values())) == 1 and None not in zxids.values()
        verdict["zxids"] = zxids
        statuses = [o["status"] for o in history.ops]
        verdict["ops"] = {s: statuses.count(s) for s in ("ok", "fail", "info")}
        verdict["worker_errors"] = sum(w.errors for w in workers + watchers)
        verdict["register"] = checker.check_registers(history.ops, reads=quorum_reads)
        verdict["register_reads"] = checker.check_registers(history.ops, reads=True)
        verdict["set"] = checker.check_set(history.ops, final["set"])
        per_parent = {}
        for who, parents in final["sequential"].items():
            for parent, names in parents.items():
                per_parent.setdefault(parent, names)
        verdict["sequential"] = checker.check_sequential(history.ops, per_parent)
        verdict["ephemeral"] = checker.check_ephemerals(history.ops)
        verdict["mutex"] = checker.check_mutex(history.ops)
        verdict["watch"] = checker.check_watches(history.ops, [r for w in watchers for r in w.log])
        if target == "zookeeper":
            # ZooKeeper checks each replica's tree against a digest of what it
            # should be (3.6+) and logs when they differ: its own word on a
            # divergence the set check finds.
            verdict["zk_digest_mismatches"] = {
                m.sid: m.log_path.read_text(errors="replace").count("Digests are not matching")
                for m in ens.members if m.log_path.exists()}
        verdict["valid"] = bool(verdict["recovered"] and verdict["converged"] and not verdict["worker_errors"]
                                and verdict["register"]["valid"] is True and verdict["set"]["valid"]
                                and verdict["sequential"]["valid"] and verdict["ephemeral"]["valid"]
                                and verdict["mutex"]["valid"] and verdict["watch"]["valid"] is not False
                                and verdict.get("registry", {}).get("valid", True)
                                and all(q["valid"] for q in verdict.get("registry_heals", [])))
        return verdict
    except Exception:
        verdict["error"] = traceback.format_exc()[-4000:]
        return verdict
    finally:
        # The nemesis first: it may be about to start a server again.
        if nemesis:
            nemesis.stop()
            nemesis.join(60)
        for w in workers + watchers:
            w.stop()
        try:
            if ens:
                ens.close()
        finally:
            for d in mounted:
                subprocess.run(["umount", "-l", str(d)], check=False)
            net.close()
        history.dump(workdir / "history.jsonl")
        with open(workdir / "watch.jsonl", "w") as f:
            for w in watchers:
                for r in w.log:
                    f.write(json.dumps(r) + "\n")
        marked = []
        for part in ("register", "register_reads"):
            for f in (verdict.get(part) or {}).get("failures", []):
                marked += [o["id"] for o in f.get("minimal") or []]
        try:
            report.timeline(history, workdir / "timeline.svg", highlight=marked)
        except Exception as e:
            verdict["timeline_error"] = repr(e)
        (workdir / "verdict.json").write_text(json.dumps(verdict, indent=1, default=str))
        log(summary(verdict, workdir))


def summary(v, workdir):
    ops = v.get("ops", {})
    kind = v["target"] + (f" {v['consensus']}" if v.get("consensus", "zab") != "zab" else "")
    kind += " quorum-sync" if v.get("quorum_sync") else ""
    kind += " linearizable-reads" if v.get("linearizable_reads") else ""
    parts = [f"{kind} {v['nodes']} nodes "
             f"seed {v['seed']} {v['time']:.0f}s:",
             "VALID" if v["valid"] else "INVALID",
             f"ok {ops.get('ok', 0)} fail {ops.get('fail', 0)} info {ops.get('info', 0)}",
             "faults " + ",".join(f"{k}×{n}" for k, n in sorted((v.get("faults") or {}).items()))]
    stale = v.get("register_reads", {})
    if stale.get("valid") is False and not v.get("quorum_sync"):
        parts.append(f"stale reads on {len(stale['failures'])} keys (sync is not a quorum round)")
    for what in ("register", "set", "sequential", "ephemeral", "mutex", "watch", "registry"):
        r = v.get(what)
        if r and r.get("valid") is not True:
            parts.append(f"{what}: {json.dumps({k: x for k, x in r.items() if k != 'failures'})[:300]}")
    heals = v.get("registry_heals") or []
    if any(not q["valid"] for q in heals):
        parts.append(f"registry: no agreement after {sum(not q['valid'] for q in heals)} of {len(heals)} "
                     "heals in the run: " + json.dumps([q for q in heals if not q["valid"]])[:300])
    if v.get("exits"):
        parts.append(f"{len(v['exits'])} servers exited by themselves (restarted): "
                     + ",".join(f"{e['server']}:{e['code']}" for e in v["exits"]))
    if v.get("recovered") is False:
        parts.append("did not recover after healing")
    if v.get("converged") is False:
        parts.append(f"zxids differ: {v.get('zxids')}")
    if v.get("error") and v.get("recovered") is not False:
        parts.append("error: " + v["error"].strip().splitlines()[-1])
    return " ".join(parts) + f" [{workdir}]"


def main(argv=None):
    p = argparse.ArgumentParser(prog="./dev faults", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--time", type=float, default=60.0, help="seconds of faults per run (default 60)")
    p.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    p.add_argument("--nemesis", default="all", help=f"all, or some of: {', '.join(NEMESES)}")
    p.add_argument("--seed", type=int, default=None, help="the first run's seed (default: random)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--target", default="corrald", choices=("corrald", "zookeeper"))
    p.add_argument("--clients", type=int, default=14)
    p.add_argument("--quorum-sync", action="store_true",
                   help="corrald's zab quorum_sync on; reads are then checked too")
    p.add_argument("--consensus", default="zab", choices=("zab", "raft"),
                   help="corrald's consensus module; on raft reads are always checked")
    p.add_argument("--linearizable-reads", action="store_true",
                   help="corrald's server.linearizable_reads on, and reads without sync (checked)")
    p.add_argument("--out", default=str(REPO / "build" / "faults"))
    args = p.parse_args(argv)
    kinds = available_nemeses() if args.nemesis == "all" else tuple(args.nemesis.split(","))
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    invalid = 0
    for r in range(args.runs):
        s = seed + r
        v = run_once(pathlib.Path(args.out) / f"{stamp}-{args.target}-n{args.nodes}-s{s}", s, args.time,
                     args.nodes, kinds, args.target, args.clients, args.quorum_sync,
                     consensus=args.consensus, linearizable_reads=args.linearizable_reads)
        invalid += not v["valid"]
    print(f"faults: {args.runs - invalid} of {args.runs} runs valid")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
