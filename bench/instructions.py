#!/usr/bin/python3
"""Counts the instructions corrald executes per request, under valgrind's
callgrind: a figure that, unlike time, does not move with whatever else a
shared machine is doing, so a change can be measured before and after.

Starts corrald under callgrind (ordinary pages, its own session), runs
`--ops` requests of each workload with corral-bench, stops the server and
divides the instructions counted (every thread of the server process, not
a snapshot's forked child; start-up and shutdown included, which is why the
default count is large) by the requests.

    bench/instructions.py [--workloads create,set,get] [--ops 100000] [--build DIR]
                          [--set KEY=VALUE ...]   # corrald options, e.g. server.audit_log=audit.log

Needs a build (./dev build) and valgrind.
"""
import argparse
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from side_by_side import four, free_port


def count(build, workload, ops, keys, sets=()):
    work = pathlib.Path(tempfile.mkdtemp(prefix="corral-instr-"))
    port = free_port()
    out = work / "callgrind.out"
    env = dict(os.environ)
    env.pop("CORRAL_HUGEPAGES", None)
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             str(build / "kernel" / "corrald"), "--set", f"server.client_address=127.0.0.1:{port}",
                             "--set", f"server.data_dir={work / 'data'}",
                             *[a for kv in sets for a in ("--set", kv)]],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if four(port, "ruok") == "imok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"corrald under valgrind did not start; see {work}/server.log")
            time.sleep(0.2)
        subprocess.run([str(build / "bench" / "corral-bench"), "--hosts", f"127.0.0.1:{port}", "--workload", workload,
                        "--ops", str(ops), "--keys", str(keys), "--quiet", "--prefix", f"/instr-{workload}"],
                       check=True, stdout=subprocess.DEVNULL)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait()
    text = (work / "server.log").read_text(errors="replace")
    shutil.rmtree(work, ignore_errors=True)
    # callgrind's summary line: "==PID== Collected : N". A snapshot's forked
    # child prints one too, which counts the parent's instructions before
    # the fork again: only the server process's own line is its total.
    m = dict(re.findall(r"==(\d+)== Collected : (\d+)", text))
    if str(proc.pid) not in m:
        sys.exit("callgrind printed no total")
    return int(m[str(proc.pid)])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="create,set,get")
    ap.add_argument("--ops", type=int, default=100000)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a corrald option for the measured server (repeatable)")
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR", str(pathlib.Path(__file__).resolve().parents[1] / "build")))
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is missing: apt-get install valgrind")
    build = pathlib.Path(args.build)
    print("| workload | instructions per request |\n| --- | ---: |")
    for w in args.workloads.split(","):
        total = count(build, w, args.ops, args.keys, args.set)
        print(f"| {w} | {total / args.ops:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
