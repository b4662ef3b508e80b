#!/usr/bin/python3
"""How Corral's cost grows with the work, side by side with Apache ZooKeeper,
from one command: each dimension is grown in steps, each server started the
same way (standalone, durable, in its own session), and the results go to a
table on stdout, a JSON file and a plot (docs/scale.png by default).

    ./dev bench scale                       # everything, with ZooKeeper
    ./dev bench scale --dimensions tree --znodes 1000000,10000000
    ./dev bench scale --quick --only corrald --plot /tmp/scale.png   # a smoke run
    ./dev bench scale --replot results.json # the plot again from a run's JSON

Dimensions:

tree      N znodes of 100 B (JSON-like data) under 100 parents: a ZooKeeper
          snapshot of them is written, ZooKeeper starts on it and corrald on
          its import (`corral import zookeeper`). At each size: the time to
          serving, resident memory once serving and per znode above an empty
          server, the snapshot's size, then writes on the loaded tree
          (creates and sets, 16 sessions x 16 in flight: ops/s, p50, p99.9,
          max), the snapshots corrald took meanwhile (from its log), and a
          restart after the writes, log tail included. etcd 3.4 (Debian's
          etcd-server) runs the same steps as a second anchor: it has no
          snapshot import, so its keys (100 B values, flat) are written
          through its own client (bench/etcd/etcd-bench) and its start is a
          restart on them; --no-etcd, --only and --quick leave it out.
wide      the same, with 100,000 children under each parent, and the time of
          a getChildren of one such parent (100,000 names).
sessions  idle sessions (raw handshakes, a ping every 3 s) in steps: RSS and
          the memory a session adds. A process here may hold at most
          RLIMIT_NOFILE connections; steps above it are cut to fit and say so.
watches   data, exist and persistent watches in steps (bench/watches.py):
          memory per watch (ZooKeeper's live heap beside its RSS), and the
          time to fire 100,000 watches at once.
"""
import argparse
import json
import os
import pathlib
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from side_by_side import BENCH, CORRALD, REPO, Server, bench, settle
from zk_import import CLI, write_snapshot

KINDS = ("corrald", "zookeeper")
# etcd's backend quota: the largest it recommends, so that 10M keys fit.
ETCD_QUOTA = 8 * 2**30


def zk_heap(znodes):
    """A heap with room for ZooKeeper's ~800 B a znode and its garbage."""
    return f"{max(2, (znodes * 1400) // 2**30 + 2)}g"


def payload_fn(seed=7):
    rng = random.Random(seed)

    def payload(i):
        return ('{"host":"10.%d.%d.%d","port":%d,"ts":%d}' % (
            rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randrange(1024, 65535),
            1700000000000 + rng.randrange(10**9))).encode().ljust(100)[:100]
    return payload


def recovered(log_path):
    """corrald's own account of its last start: (znodes, load ms, entries replayed, replay ms)."""
    text = pathlib.Path(log_path).read_text(errors="replace")
    m = None
    for m in re.finditer(r"recovered (\d+) znodes .*?loaded in (\d+) ms, (\d+) log entries replayed in (\d+) ms", text):
        pass
    return tuple(int(x) for x in m.groups()) if m else None


def recovery_note(rec):
    """What a restart spent its time on, from corrald's own account."""
    if not rec:
        return ""
    znodes, load_ms, entries, replay_ms = rec
    return f" ({znodes:,} znodes: snapshot loaded in {load_ms} ms, {entries:,} log entries replayed in {replay_ms} ms)"


def snapshots_taken(log_path):
    """The snapshots corrald wrote while serving: [(znodes, ms, fork pause ms,
    MiB of node copies kept)]; a forked one keeps no copies, a walked one
    does not fork."""
    text = pathlib.Path(log_path).read_text(errors="replace")
    out = []
    for n, ms, pause, kept in re.findall(
            r"snapshot at zxid \S+: (\d+) znodes in (\d+) ms, (?:written while serving \(the fork paused it "
            r"([\d.]+) ms\)|walked between requests \((\d+) KiB of nodes kept for it\))", text):
        out.append((int(n), int(ms), float(pause or 0), int(kept or 0) / 1024))
    return out


def dir_mb(path, pattern=""):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file() and pattern in f.name) / 2**20


class Args:
    """What side_by_side.bench reads."""

    def __init__(self, sessions=16, depth=16, value_size=100, keys=10000):
        self.sessions, self.depth, self.value_size, self.keys = sessions, depth, value_size, keys
        self.certs = None


def children_ms(port, parent, times=5):
    """Median time of a getChildren of `parent`, one at a time."""
    from corral_harness import jute
    from watches import Conn
    c = Conn(port)
    try:
        took = []
        for _ in range(times):
            t0 = time.monotonic()
            c.run([(jute.GET_CHILDREN, jute.path_watch(parent, False))])
            took.append((time.monotonic() - t0) * 1000)
        return statistics.median(took)
    finally:
        c.close()


def etcd_row(n, work, opts, tool, empty_mb):
    """etcd at one tree size: N keys written through its client, then the
    same measurements as the other servers'."""
    from etcd_side_by_side import Etcd, etcd_bench
    srv = Etcd(work / f"tree-etcd-{n}", extra=["--quota-backend-bytes", str(ETCD_QUOTA)])
    srv.start_timeout = Server.start_timeout
    row = {"znodes": n, "server": "etcd", "parents": 1}
    try:
        srv.start()
        t0 = time.monotonic()
        fill = etcd_bench(tool, srv.port, "create", opts, ops=n)
        print(f"tree {n:,} etcd: {n:,} keys written in {time.monotonic() - t0:.0f} s "
              f"({fill['ops_per_sec']:,.0f} ops/s)", file=sys.stderr)
        srv.stop()
        row["snapshot_mb"] = dir_mb(srv.dir / "data", "db")
        settle()
        row["start_s"] = srv.start()
        time.sleep(2)
        row["rss_mb"] = srv.rss_mb()
        row["bytes_per_znode"] = (row["rss_mb"] - empty_mb) * 2**20 / n
        for w in ("create", "set"):
            settle()
            r = etcd_bench(tool, srv.port, w, opts, duration=opts.duration)
            row[w] = {k: r[k] for k in ("ops_per_sec", "p50_ms", "p99_ms", "p999_ms", "max_ms")}
        srv.stop()
        settle()
        row["restart_s"] = srv.start()
    finally:
        srv.stop()
        shutil.rmtree(srv.dir, ignore_errors=True)
    return row


def tree(sizes, kinds, work, opts, wide=False, etcd_tool=None):
    """Rows for each size and server (see the module's description)."""
    per_parent = 100_000
    rows, empty = [], {}
    if etcd_tool:
        from etcd_side_by_side import Etcd
        srv = Etcd(work / "empty-etcd", extra=["--quota-backend-bytes", str(ETCD_QUOTA)])
        srv.start()
        time.sleep(2)
        empty["etcd"] = srv.rss_mb()
        srv.stop()
    for kind in kinds:
        srv = Server(kind, work / f"empty-{kind}{'-wide' if wide else ''}", "1g")
        srv.start()
        time.sleep(2)
        empty[kind] = srv.rss_mb()
        srv.stop()
    for n in sizes:
        parents = max(1, n // per_parent) if wide else 100
        zk_src = work / f"zk-{n}"
        write_snapshot(zk_src / "version-2", n, "", payload_fn(), parents=parents)
        zk_snapshot_mb = dir_mb(zk_src)
        for kind in kinds:
            srv = Server(kind, work / f"{'wide' if wide else 'tree'}-{kind}-{n}", zk_heap(n))
            srv.data.rmdir()
            if kind == "zookeeper":
                shutil.copytree(zk_src, srv.data)
                snapshot_mb = zk_snapshot_mb
            else:
                subprocess.run([str(CLI), "import", "zookeeper", "--from", str(zk_src), "--to", str(srv.data)],
                               check=True, capture_output=True)
                snapshot_mb = dir_mb(srv.data, "snap")
            row = {"znodes": n, "server": kind, "parents": parents, "snapshot_mb": snapshot_mb}
            try:
                row["start_s"] = srv.start()
                time.sleep(2)  # a JVM finishes its start-up work
                row["rss_mb"] = srv.rss_mb()
                row["bytes_per_znode"] = (row["rss_mb"] - empty[kind]) * 2**20 / n
                if kind == "corrald":
                    row["recovered"] = recovered(srv.dir / "server.log")
                if wide:
                    row["children_ms"] = children_ms(srv.port, "/bench/p000")
                for w in ("create", "set"):
                    settle()
                    r = bench(srv.port, w, opts, duration=opts.duration)
                    row[w] = {k: r[k] for k in ("ops_per_sec", "p50_ms", "p99_ms", "p999_ms", "max_ms")}
                if kind == "corrald":
                    row["snapshots"] = snapshots_taken(srv.dir / "server.log")
                srv.stop()
                settle()
                row["restart_s"] = srv.start()
                if kind == "corrald":
                    row["restart_recovered"] = recovered(srv.dir / "server.log")
            finally:
                srv.stop()
                shutil.rmtree(srv.dir, ignore_errors=True)
            rows.append(row)
            print(f"{'wide' if wide else 'tree'} {n:,} {kind}: start {row['start_s']:.2f} s, RSS {row['rss_mb']:.0f} MB "
                  f"({row['bytes_per_znode']:.0f} B/znode), create {row['create']['ops_per_sec']:.0f} ops/s "
                  f"p50 {row['create']['p50_ms']:.2f} p99.9 {row['create']['p999_ms']:.2f} max {row['create']['max_ms']:.2f} ms, "
                  f"set p50 {row['set']['p50_ms']:.2f} p99.9 {row['set']['p999_ms']:.2f} max {row['set']['max_ms']:.2f} ms, "
                  f"snapshots {row.get('snapshots')}, restart {row['restart_s']:.2f} s{recovery_note(row.get('restart_recovered'))}", file=sys.stderr)
        shutil.rmtree(zk_src)
        if etcd_tool:
            row = etcd_row(n, work, opts, etcd_tool, empty["etcd"])
            rows.append(row)
            print(f"tree {n:,} etcd: start {row['start_s']:.2f} s, RSS {row['rss_mb']:.0f} MB "
                  f"({row['bytes_per_znode']:.0f} B/key), create {row['create']['ops_per_sec']:.0f} ops/s "
                  f"p99.9 {row['create']['p999_ms']:.2f} ms, restart {row['restart_s']:.2f} s", file=sys.stderr)
    return {"empty_rss_mb": empty, "rows": rows}


def sessions(steps, kinds, work, settle_s):
    from idle_sessions import Sessions
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it
    limit = hard - 500
    cut = [s for s in steps if s > limit]
    steps = sorted({min(s, limit) for s in steps})
    if cut:
        print(f"sessions: RLIMIT_NOFILE is {hard} here (and may not be raised), so the steps above "
              f"{limit:,} ({', '.join(f'{s:,}' for s in cut)}) are cut to {limit:,}", file=sys.stderr)
    out = {"nofile_limit": hard, "cut": cut, "rows": []}
    for kind in kinds:
        srv = Server(kind, work / f"sessions-{kind}", "1g")
        srv.start()
        conns = Sessions(srv.port)
        try:
            conns.keep_alive(settle_s)
            base = srv.rss_mb()
            out["rows"].append({"server": kind, "sessions": 0, "rss_mb": base})
            for n in steps:
                conns.grow(n, rate=900 if kind == "corrald" else 2000)
                conns.keep_alive(settle_s)
                rss = srv.rss_mb()
                out["rows"].append({"server": kind, "sessions": n, "rss_mb": rss,
                                    "kb_per_session": (rss - base) * 1024 / n})
                print(f"sessions {n:,} {kind}: RSS {rss:.1f} MB ({(rss - base) * 1024 / n:.1f} KB a session)",
                      file=sys.stderr)
        finally:
            conns.close()
            srv.stop()
    return out


def watches(steps, kinds, work, fire_count, watch_kinds):
    import watches as w
    out = {"rows": [], "fire": []}
    for wk in watch_kinds:
        for kind in kinds:
            base, rows = w.memory_steps(wk, kind, work / f"watches-{wk}", "2g", steps)
            for target, rss, per_rss, per_live in rows:
                out["rows"].append({"kind": wk, "server": kind, "watches": target, "rss_mb": rss,
                                    "bytes_per_watch_rss": per_rss, "bytes_per_watch_held": per_live})
    for kind in kinds:
        writes, last = w.fire(kind, work / f"fire-{kind}", "2g", fire_count)
        out["fire"].append({"server": kind, "watches": fire_count, "writes_s": writes, "last_notification_s": last})
    return out


def tables(res):
    lines = []
    for dim in ("tree", "wide"):
        if dim not in res:
            continue
        lines += [f"\n### {dim}: {'100 parents' if dim == 'tree' else '100,000 children a parent'}\n",
                  "| znodes | server | start s | RSS MB | B/znode | snapshot MB | create ops/s | create p50 / p99.9 / max ms "
                  "| set ops/s | set p50 / p99.9 / max ms | restart after writes s |"
                  + (" getChildren of 100k ms |" if dim == "wide" else ""),
                  "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
                  + (" ---: |" if dim == "wide" else "")]
        for r in res[dim]["rows"]:
            c, s = r["create"], r["set"]
            lines.append(f"| {r['znodes']:,} | {r['server']} | {r['start_s']:.2f} | {r['rss_mb']:,.0f} | "
                         f"{r['bytes_per_znode']:.0f} | {r['snapshot_mb']:,.0f} | {c['ops_per_sec']:,.0f} | "
                         f"{c['p50_ms']:.2f} / {c['p999_ms']:.2f} / {c['max_ms']:.2f} | {s['ops_per_sec']:,.0f} | "
                         f"{s['p50_ms']:.2f} / {s['p999_ms']:.2f} / {s['max_ms']:.2f} | {r['restart_s']:.2f} |"
                         + (f" {r['children_ms']:.1f} |" if dim == "wide" else ""))
        for r in res[dim]["rows"]:
            if r["server"] == "corrald" and r.get("snapshots"):
                snaps = r["snapshots"]
                took = ", ".join(f"{s[1]} ms" for s in snaps)
                if any(len(s) > 3 and s[3] > 0 for s in snaps) or not any(s[2] for s in snaps):
                    lines.append(f"\ncorrald at {r['znodes']:,}: {len(snaps)} snapshots during the writes, "
                                 f"{took}, walked between requests; node copies kept "
                                 f"{', '.join(f'{s[3]:.1f} MiB' for s in snaps)}")
                else:
                    lines.append(f"\ncorrald at {r['znodes']:,}: {len(snaps)} snapshots during the writes, "
                                 f"{took} in the child; fork pauses "
                                 f"{', '.join(f'{s[2]:.1f} ms' for s in snaps)}")
    if "sessions" in res:
        lines += ["\n### sessions\n", "| sessions | server | RSS MB | KB a session |", "| ---: | --- | ---: | ---: |"]
        for r in res["sessions"]["rows"]:
            lines.append(f"| {r['sessions']:,} | {r['server']} | {r['rss_mb']:.1f} | "
                         f"{r.get('kb_per_session', 0):.1f} |")
    if "watches" in res:
        lines += ["\n### watches\n", "| kind | watches | server | RSS MB | B/watch (RSS) | B/watch held |",
                  "| --- | ---: | --- | ---: | ---: | ---: |"]
        for r in res["watches"]["rows"]:
            lines.append(f"| {r['kind']} | {r['watches']:,} | {r['server']} | {r['rss_mb']:.0f} | "
                         f"{r['bytes_per_watch_rss']:.0f} | {r['bytes_per_watch_held']:.0f} |")
        for f in res["watches"]["fire"]:
            lines.append(f"\nfiring {f['watches']:,} watches, {f['server']}: writes {f['writes_s']:.2f} s, "
                         f"last notification {f['last_notification_s']:.2f} s")
    return "\n".join(lines)


def ratios(res):
    """Corral beside ZooKeeper, one row per step, where both ran."""
    lines = []

    def pair(rows, key, other="zookeeper", **match):
        by = {r["server"]: r for r in rows if all(r[k] == v for k, v in match.items())}
        return by.get("corrald"), by.get(other)

    for dim, other in (("tree", "zookeeper"), ("wide", "zookeeper"), ("tree", "etcd")):
        if dim not in res or not any(r["server"] == other for r in res[dim]["rows"]):
            continue
        name, o = ("ZooKeeper", "Z") if other == "zookeeper" else ("etcd", "E")
        sizes = sorted({r["znodes"] for r in res[dim]["rows"]})
        lines += [f"\n### {dim}, corrald beside {name}\n",
                  f"| znodes | start s (C / {o}) | RSS MB (C / {o}) | B/znode (C / {o}) | ratio | create ops/s (C / {o}) "
                  f"| create p99.9 ms (C / {o}) | set ops/s (C / {o}) | set p99.9 ms (C / {o}) | restart after writes s (C / {o}) |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for n in sizes:
            c, z = pair(res[dim]["rows"], "znodes", other, znodes=n)
            if not (c and z):
                continue
            lines.append(
                f"| {n:,} | {c['start_s']:.2f} / {z['start_s']:.2f} | {c['rss_mb']:,.0f} / {z['rss_mb']:,.0f} | "
                f"{c['bytes_per_znode']:.0f} / {z['bytes_per_znode']:.0f} | {c['bytes_per_znode'] / z['bytes_per_znode']:.2f} | "
                f"{c['create']['ops_per_sec']:,.0f} / {z['create']['ops_per_sec']:,.0f} | "
                f"{c['create']['p999_ms']:.1f} / {z['create']['p999_ms']:.1f} | "
                f"{c['set']['ops_per_sec']:,.0f} / {z['set']['ops_per_sec']:,.0f} | "
                f"{c['set']['p999_ms']:.1f} / {z['set']['p999_ms']:.1f} | {c['restart_s']:.2f} / {z['restart_s']:.2f} |")
    if "sessions" in res:
        rows = res["sessions"]["rows"]
        lines += ["\n### idle sessions, corrald beside ZooKeeper\n",
                  "| sessions | RSS MB (C / Z) | KB a session (C / Z) | ratio |", "| ---: | ---: | ---: | ---: |"]
        for n in sorted({r["sessions"] for r in rows if r["sessions"]}):
            c = next((r for r in rows if r["server"] == "corrald" and r["sessions"] == n), None)
            z = next((r for r in rows if r["server"] == "zookeeper" and r["sessions"] == n), None)
            if c and z:
                lines.append(f"| {n:,} | {c['rss_mb']:.1f} / {z['rss_mb']:.1f} | {c['kb_per_session']:.1f} / "
                             f"{z['kb_per_session']:.1f} | {c['kb_per_session'] / z['kb_per_session']:.2f} |")
    if "watches" in res:
        rows = res["watches"]["rows"]
        lines += ["\n### watches, corrald beside ZooKeeper (held: corrald's RSS, ZooKeeper's live heap)\n",
                  "| kind | watches | B/watch held (C / Z) | ratio |", "| --- | ---: | ---: | ---: |"]
        for kind in dict.fromkeys(r["kind"] for r in rows):
            for n in sorted({r["watches"] for r in rows if r["kind"] == kind}):
                c = next((r for r in rows if r["server"] == "corrald" and r["kind"] == kind and r["watches"] == n), None)
                z = next((r for r in rows if r["server"] == "zookeeper" and r["kind"] == kind and r["watches"] == n), None)
                if c and z and z["bytes_per_watch_held"] > 0:
                    lines.append(f"| {kind} | {n:,} | {c['bytes_per_watch_held']:.0f} / {z['bytes_per_watch_held']:.0f} | "
                                 f"{c['bytes_per_watch_held'] / z['bytes_per_watch_held']:.2f} |")
    return "\n".join(lines)


def plot(res, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"corrald": "#1f77b4", "zookeeper": "#d62728", "etcd": "#2ca02c"}
    panels = []
    if "tree" in res:
        panels += ["tree_rss", "tree_start", "tree_tail"]
    if "sessions" in res:
        panels += ["sessions"]
    if "watches" in res:
        panels += ["watches"]
    if not panels:
        return
    cols = 3
    rows_n = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.2 * cols, 4.0 * rows_n), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, p in zip(axes.flat, panels):
        if p in ("tree_rss", "tree_start", "tree_tail"):
            dim = "tree"
            for kind in (*KINDS, "etcd"):
                pts = [r for r in res[dim]["rows"] if r["server"] == kind]
                if not pts:
                    continue
                x = [r["znodes"] / 1e6 for r in pts]
                if p == "tree_rss":
                    ax.plot(x, [r["rss_mb"] for r in pts], "o-", color=colors[kind],
                            label=f"{kind}, {'flat keys' if kind == 'etcd' else '100 parents'}")
                    wide = [r for r in res.get("wide", {}).get("rows", []) if r["server"] == kind]
                    if wide:
                        ax.plot([r["znodes"] / 1e6 for r in wide], [r["rss_mb"] for r in wide], "x", markersize=10,
                                color=colors[kind], label=f"{kind}, 100k children a parent")
                    ax.set_ylabel("RSS once serving (MB)")
                    ax.set_title("memory")
                elif p == "tree_start":
                    ax.plot(x, [r["start_s"] for r in pts], "o-", color=colors[kind], label=f"{kind} start")
                    ax.plot(x, [r["restart_s"] for r in pts], "s--", color=colors[kind], label=f"{kind} restart after writes")
                    ax.set_ylabel("seconds to serving")
                    ax.set_title("start and restart")
                else:
                    ax.plot(x, [r["create"]["p999_ms"] for r in pts], "o-", color=colors[kind], label=f"{kind} create p99.9")
                    ax.plot(x, [r["create"]["p50_ms"] for r in pts], "o:", color=colors[kind], label=f"{kind} create p50")
                    ax.plot(x, [r["set"]["p999_ms"] for r in pts], "s--", color=colors[kind], label=f"{kind} set p99.9")
                    ax.set_ylabel("latency (ms)")
                    ax.set_yscale("log")
                    ax.set_title("writes on the loaded tree (16 x 16)")
            ax.set_xlabel("znodes (millions)")
        elif p == "sessions":
            for kind in KINDS:
                pts = [r for r in res["sessions"]["rows"] if r["server"] == kind]
                if pts:
                    ax.plot([r["sessions"] / 1000 for r in pts], [r["rss_mb"] for r in pts], "o-", color=colors[kind], label=kind)
            ax.set_xlabel("idle sessions (thousands)")
            ax.set_ylabel("RSS (MB)")
            ax.set_title("idle sessions")
        elif p == "watches":
            styles = {"data": "o-", "exist": "^-.", "persistent": "s--"}
            for kind in KINDS:
                for wk in styles:
                    pts = [r for r in res["watches"]["rows"] if r["server"] == kind and r["kind"] == wk]
                    if pts:
                        ax.plot([r["watches"] / 1000 for r in pts], [r["bytes_per_watch_held"] for r in pts],
                                styles[wk], color=colors[kind], label=f"{kind} {wk}")
            ax.set_xlabel("watches (thousands)")
            ax.set_xscale("log")
            ax.set_ylabel("bytes a watch (ZooKeeper: live heap)")
            ax.set_title("watches")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    anchors = "Apache ZooKeeper and etcd" if any(r["server"] == "etcd" for r in res.get("tree", {}).get("rows", [])) \
        else "Apache ZooKeeper"
    fig.suptitle(f"Corral beside {anchors} as the work grows ({os.cpu_count()} cores)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"plot: {out}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dimensions", default="tree,wide,sessions,watches")
    ap.add_argument("--znodes", default="1000000,2000000,4000000,10000000", help="tree sizes")
    ap.add_argument("--wide-znodes", default="1000000,4000000", help="sizes of the tree with 100k children a parent")
    ap.add_argument("--sessions", default="1000,5000,10000,100000", help="idle session steps")
    ap.add_argument("--watches", default="10000,100000,1000000")
    ap.add_argument("--watch-kinds", default="data,exist,persistent")
    ap.add_argument("--fire", type=int, default=100_000, help="watches fired at once")
    ap.add_argument("--duration", type=float, default=5, help="seconds of creates and of sets at each tree size")
    ap.add_argument("--only", choices=KINDS)
    ap.add_argument("--no-etcd", action="store_true", help="leave etcd out of the tree steps")
    ap.add_argument("--quick", action="store_true", help="small steps everywhere: a smoke run of the harness")
    ap.add_argument("--corrald-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for every corrald started (repeatable), e.g. server.snapshot_method=walk")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--plot", default=str(REPO / "docs" / "scale.png"))
    ap.add_argument("--replot", help="plot a previous run's JSON and stop")
    a = ap.parse_args()
    Server.corrald_settings = list(a.corrald_set)
    if a.replot:
        res = json.loads(pathlib.Path(a.replot).read_text())
        plot(res, a.plot)
        print(tables(res))
        print(ratios(res))
        return
    if a.quick:
        a.znodes, a.wide_znodes, a.sessions = "20000,40000", "100000", "200,400"
        a.watches, a.fire, a.duration = "2000,4000", 2000, 1.5
        Server.start_timeout = 60
    else:
        Server.start_timeout = 900
    for path in (CORRALD, BENCH, CLI):
        if not path.exists():
            sys.exit(f"{path} is missing: run ./dev build first")
    kinds = [a.only] if a.only else list(KINDS)
    dims = a.dimensions.split(",")
    unknown = set(dims) - {"tree", "wide", "sessions", "watches"}
    if unknown:
        sys.exit(f"unknown dimensions: {', '.join(sorted(unknown))}")
    work = pathlib.Path(tempfile.mkdtemp(prefix="corral-scale-"))
    opts = Args()
    opts.duration = a.duration
    res = {"machine": {"cores": os.cpu_count(),
                       "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)},
           "started": time.strftime("%Y-%m-%d %H:%M")}

    def save():
        if a.json:
            pathlib.Path(a.json).write_text(json.dumps(res, indent=1))

    etcd_tool = None
    try:
        if "tree" in dims and not (a.no_etcd or a.only or a.quick):
            from etcd_side_by_side import build_etcd_bench
            for tool in ("etcd", "etcdctl", "go"):
                if not shutil.which(tool):
                    sys.exit(f"{tool} is missing: apt-get install etcd-server etcd-client golang-go "
                             "golang-etcd-server-dev (or --no-etcd)")
            etcd_tool = build_etcd_bench(work)
        if "tree" in dims:
            res["tree"] = tree([int(x) for x in a.znodes.split(",")], kinds, work, opts, etcd_tool=etcd_tool)
            save()
        if "wide" in dims:
            res["wide"] = tree([int(x) for x in a.wide_znodes.split(",")], kinds, work, opts, wide=True)
            save()
        if "sessions" in dims:
            res["sessions"] = sessions([int(x) for x in a.sessions.split(",")], kinds, work, 5 if a.quick else 8)
            save()
        if "watches" in dims:
            res["watches"] = watches([int(x) for x in a.watches.split(",")], kinds, work, a.fire,
                                     a.watch_kinds.split(","))
            save()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(tables(res))
    print(ratios(res))
    if a.plot:
        plot(res, a.plot)


if __name__ == "__main__":
    main()
