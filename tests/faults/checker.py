"""Checkers for fault-run histories (history.py), written here.

Linearizability of a register per key is decided with Wing and Gong's
search as Lowe made it fast (a cache of (linearized set, state) pairs, so
each configuration is explored once), the algorithm Knossos and Porcupine
use. Keys are independent registers, so each key is checked alone
(P-compositionality).

The register is a znode's (value, version): `read` is sync + getData and
returns both; `write` is setData with version -1 and returns the version it
made; `cas` is setData with an expected version. Versions make the check
strict: a write that returns version 7 must be linearized where the version
was 6.

An info operation may take effect at any point after its call or never:
its return is placed after every other event, and the search succeeds once
every ok operation is linearized, whatever became of the info ones.
"""
import math

INF = math.inf


class _Entry:
    __slots__ = ("op", "index", "is_call", "match", "prev", "next")

    def __init__(self, op, index, is_call):
        self.op, self.index, self.is_call = op, index, is_call
        self.match = self.prev = self.next = None


def register_step(state, op):
    """Returns the state after `op` or None when `op` cannot happen in
    `state`. state is (value, version)."""
    f, info = op["f"], op["status"] == "info"
    value, version = state
    if f == "read":
        return state if tuple(op["result"]) == state else None
    if f == "write":
        if info:
            return (op["args"], version + 1)
        return (op["args"], op["result"]) if op["result"] == version + 1 else None
    if f == "cas":
        expected, new = op["args"]
        if version != expected:
            return None
        if not info and op["result"] != expected + 1:
            return None
        return (new, expected + 1)
    raise ValueError(f"unknown register operation {f}")


def linearizable(ops, initial, step=register_step, budget=2_000_000):
    """Wing-Gong-Lowe search. Returns {"valid": True|False|"unknown", ...};
    when invalid, "op" is an operation that could not be placed after the
    longest linearizable prefix found ("prefix", ids in order)."""
    ops = [o for o in ops if o["status"] in ("ok", "info")]
    ops = [o for o in ops if not (o["status"] == "info" and o["f"] == "read")]
    events = []
    for i, o in enumerate(ops):
        call, ret = _Entry(o, i, True), _Entry(o, i, False)
        call.match, ret.match = ret, call
        events.append((o["call"], 0, i, call))
        events.append((o["ret"] if o["status"] == "ok" else INF, 1, i, ret))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, -1, False)
    prev = head
    for _, _, _, e in events:
        prev.next, e.prev = e, prev
        prev = e

    def lift(e):
        e.prev.next = e.next
        if e.next:
            e.next.prev = e.prev
        r = e.match
        r.prev.next = r.next
        if r.next:
            r.next.prev = r.prev

    def unlift(e):
        r = e.match
        r.prev.next = r
        if r.next:
            r.next.prev = r
        e.prev.next = e
        if e.next:
            e.next.prev = e

    state, linearized = initial, 0
    cache = {(0, initial)}
    stack = []
    best = []
    stuck = None
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > budget:
            return {"valid": "unknown", "reason": f"search budget of {budget} steps spent", "ops": len(ops)}
        if entry.is_call:
            new = step(state, entry.op)
            if new is not None:
                bits = linearized | (1 << entry.index)
                if (bits, new) not in cache:
                    cache.add((bits, new))
                    stack.append((entry, state))
                    state, linearized = new, bits
                    lift(entry)
                    if len(stack) > len(best):
                        best = [e.op["id"] for e, _ in stack]
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if entry.op["status"] == "info":
                break  # only info operations are left unplaced
            if len(stack) == len(best) and stuck is None:
                stuck = entry.op
            if not stack:
                return {"valid": False, "op": (stuck or entry.op)["id"], "prefix": best, "ops": len(ops)}
            top, state = stack.pop()
            linearized &= ~(1 << top.index)
            unlift(top)
            entry = top.next
    return {"valid": True, "ops": len(ops), "steps": steps}


def minimise(ops, still_fails):
    """The shortest sub-history (by removing operations, ddmin-style) for
    which still_fails(sub) holds; ops must fail as given."""
    ops = list(ops)
    chunk = max(1, len(ops) // 2)
    while True:
        i, removed = 0, False
        while i < len(ops):
            trial = ops[:i] + ops[i + chunk:]
            if trial and still_fails(trial):
                ops, removed = trial, True
            else:
                i += chunk
        if chunk == 1 and not removed:
            return ops
        chunk = max(1, chunk // 2) if not removed else chunk


def witness(ops, stuck_id, initial, budget=2_000_000):
    """A short sub-history that shows a register violation. For a stale
    read: the read and an acknowledged write of a newer version that
    returned before the read was called. Otherwise the history up to the
    operation the search could not place, with every read that is not
    needed removed (removing a read never hides a violation nor makes
    one; removing a write could make one, so writes stay)."""
    by_id = {o["id"]: o for o in ops}
    stuck = by_id.get(stuck_id)
    reads = [o for o in ops if o["f"] == "read" and o["status"] == "ok"]
    if stuck and stuck["f"] == "read" and stuck["status"] == "ok":
        reads = [stuck] + reads
    done = sorted((o for o in ops if o["f"] in ("write", "cas") and o["status"] == "ok"), key=lambda o: o["ret"])
    for read in reads:
        _, seen = read["result"]
        for o in done:
            if o["ret"] >= read["call"]:
                break
            if o["result"] > seen:
                return [o, read]
    if stuck and stuck["ret"] is not None:
        window = [o for o in ops if o["call"] <= stuck["ret"]]
        if linearizable(window, initial, budget=budget)["valid"] is False:
            ops = window
    if len(ops) > 2000:
        return None
    reads = [o for o in ops if o["f"] == "read"]
    others = [o for o in ops if o["f"] != "read"]
    kept = minimise(reads, lambda sub: linearizable(others + sub, initial, budget=budget)["valid"] is False)
    return sorted(others + kept, key=lambda o: o["call"])


def check_registers(ops, initial=(0, 0), reads=True, budget=2_000_000):
    """Per-key linearizability of the register workload. With reads=False
    the reads are left out (a leader's sync is not a quorum operation, so
    sync+read can be stale in ZooKeeper's design): writes and
    compare-and-sets are still checked against each other."""
    by_key = {}
    for o in ops:
        if o["workload"] == "register" and (reads or o["f"] != "read"):
            by_key.setdefault(o["key"], []).append(o)
    result = {"valid": True, "keys": len(by_key), "failures": [], "unknown": []}
    for key, key_ops in sorted(by_key.items()):
        r = linearizable(key_ops, initial, budget=budget)
        if r["valid"] is True:
            continue
        if r["valid"] == "unknown":
            result["unknown"].append(key)
            if result["valid"] is True:
                result["valid"] = "unknown"
            continue
        result["valid"] = False
        useful = [o for o in key_ops if o["status"] in ("ok", "info")]
        small = witness(useful, r["op"], initial, budget)
        result["failures"].append({"key": key, "op": r["op"], "prefix_length": len(r["prefix"]),
                                   "minimal": small})
    return result


def check_set(ops, final):
    """Every acknowledged create is present at the end; none that certainly
    failed is. `final` maps each server (or "any") to the names it lists."""
    adds = [o for o in ops if o["workload"] == "set"]
    ok = {o["args"] for o in adds if o["status"] == "ok"}
    failed = {o["args"] for o in adds if o["status"] == "fail"}
    attempted = {o["args"] for o in adds}
    result = {"valid": True, "acknowledged": len(ok), "indeterminate": sum(o["status"] == "info" for o in adds)}
    views = list(final.values())
    if not views:
        return {"valid": False, "error": "no server listed the set at the end"}
    seen = set(views[0])
    lost = sorted(ok - seen)
    unexpected = sorted((seen & failed) | (seen - attempted))
    diverged = [who for who, names in final.items() if set(names) != seen]
    if lost:
        result.update(valid=False, lost=lost)
    if unexpected:
        result.update(valid=False, unexpected=unexpected)
    if diverged:
        result.update(valid=False, diverged=diverged, diverged_names={
            who: {"missing": sorted(seen - set(final[who]))[:10], "extra": sorted(set(final[who]) - seen)[:10],
                  "counts": [len(seen), len(final[who])]} for who in diverged})
    result["recovered_indeterminate"] = len(seen & (attempted - ok - failed))
    return result


def check_sequential(ops, final):
    """Sequential names are unique per parent and grow in real-time order:
    a create that returned before another was called has the smaller
    counter. Every acknowledged name is present at the end."""
    creates = [o for o in ops if o["workload"] == "sequential"]
    result = {"valid": True, "acknowledged": 0, "errors": []}
    by_parent = {}
    for o in creates:
        if o["status"] == "ok":
            by_parent.setdefault(o["key"], []).append(o)
            result["acknowledged"] += 1
    for parent, done in by_parent.items():
        names = [o["result"] for o in done]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            result["errors"].append({"parent": parent, "duplicate": dup[:10]})
        done.sort(key=lambda o: o["ret"])
        # For each op, the largest counter among ops that returned before it
        # was called must be smaller than its own.
        ordered = sorted(done, key=lambda o: o["call"])
        j, highest, highest_op = 0, -1, None
        for o in ordered:
            while j < len(done) and done[j]["ret"] < o["call"]:
                c = int(done[j]["result"][-10:])
                if c > highest:
                    highest, highest_op = c, done[j]
                j += 1
            if int(o["result"][-10:]) <= highest:
                result["errors"].append({"parent": parent, "earlier": highest_op["id"], "later": o["id"],
                                         "names": [highest_op["result"], o["result"]]})
                break
        present = set(final.get(parent, []))
        lost = sorted(set(n.rsplit("/", 1)[-1] for n in names) - present)
        if lost:
            result["errors"].append({"parent": parent, "lost": lost[:20]})
    if result["errors"]:
        result["valid"] = False
    return result


def check_ephemerals(ops):
    """An ephemeral disappears only with its session: a check that found a
    session's own ephemeral missing, followed by any successful operation on
    that session (so it had not expired), is a violation."""
    by_session = {}
    for o in ops:
        if o["workload"] == "ephemeral":
            by_session.setdefault(o["key"], []).append(o)
    result = {"valid": True, "sessions": len(by_session), "checks": 0, "errors": []}
    for session, s_ops in by_session.items():
        created = [o["ret"] for o in s_ops if o["f"] == "create" and o["status"] == "ok"]
        if not created:
            continue
        born = min(created)
        checks = [o for o in s_ops if o["f"] == "check" and o["status"] == "ok" and o["call"] > born]
        result["checks"] += len(checks)
        alive_at = max((o["call"] for o in s_ops if o["status"] == "ok"), default=None)
        for o in checks:
            if o["result"] is False and alive_at is not None and alive_at > o["ret"]:
                result["errors"].append({"session": session, "missing_at": o["id"],
                                         "alive_until": alive_at})
                break
    if result["errors"]:
        result["valid"] = False
    return result


def check_mutex(ops):
    """No two holds of the mutex overlap, and fencing tokens grow. A hold
    counts when its release (deleting its own lock node) succeeded: the node,
    and so the session, lived from acquisition to release. Such holds, from
    acquisition's return to release's call, must be disjoint in real time,
    and their tokens (lock node counters) must grow in that order."""
    acquires = {}
    releases = {}
    fenced = 0
    for o in ops:
        if o["workload"] != "mutex":
            continue
        if o["f"] == "acquire" and o["status"] == "ok":
            acquires[(o["process"], o["result"])] = o
        elif o["f"] == "release":
            releases[(o["process"], o["args"])] = o
        elif o["f"] == "fence" and o["status"] == "fail" and o.get("error") == "Fenced":
            fenced += 1
    holds = []
    for k, acq in acquires.items():
        rel = releases.get(k)
        if rel and rel["status"] == "ok":
            holds.append((acq["ret"], rel["call"], int(acq["result"][-10:]), acq["id"], rel["id"]))
    holds.sort()
    result = {"valid": True, "holds": len(holds), "fenced": fenced, "errors": []}
    for a, b in zip(holds, holds[1:]):
        if b[0] < a[1]:
            result["errors"].append({"overlap": [a[3], b[3]], "tokens": [a[2], b[2]]})
        elif b[2] <= a[2]:
            result["errors"].append({"token_order": [a[3], b[3]], "tokens": [a[2], b[2]]})
        if len(result["errors"]) >= 10:
            break
    if result["errors"]:
        result["valid"] = False
    return result


NODE_DATA_CHANGED = 3


def check_watches(ops, log, root="/faults/reg/"):
    """A persistent recursive watch on the register keys (workload.Watcher)
    must, on each connection of a session, be told of every change in zxid
    order with no gap:

    - within a session, notification zxids strictly increase (no change
      told twice, none out of order, also across reconnects);
    - a notification on a connection is for a change made after the watch
      was registered on it (its zxid above `since`);
    - no gap: every acknowledged write to a key whose zxid lies between
      the connection's `since` and the largest zxid the connection saw in
      any header (a notification, a reply, a ping's answer: its `upto`) was
      told on that connection, since a server tells a change before it
      answers anything after it;
    - nothing invented: each notification names a change of that key, an
      acknowledged write's zxid or, at most once per such write, one that
      timed out (and so may have happened);
    - only data changes: the keys are never created or deleted during the
      run.

    Between connections (the client was cut off) changes may be missed:
    ZooKeeper does not replay a persistent watch on reconnect. A server
    whose notifications carry no zxid (ZooKeeper before 3.9 sends -1)
    cannot be checked; the result says so (valid None)."""
    written = {}  # zxid -> (key, op id) of every acknowledged write
    by_key = {}  # key -> sorted acknowledged write zxids
    unknown = {}  # key -> writes that timed out
    for o in ops:
        if o["workload"] != "register" or o["f"] not in ("write", "cas"):
            continue
        if o["status"] == "ok" and o.get("zxid") is not None:
            written[o["zxid"]] = (o["key"], o["id"])
            by_key.setdefault(o["key"], []).append(o["zxid"])
        elif o["status"] == "info":
            unknown[o["key"]] = unknown.get(o["key"], 0) + 1
    events = [r for r in log if r["kind"] == "event"]
    conns = {(r["session"], r["conn"]): r for r in log if r["kind"] == "conn"}
    ended = {}  # (session, conn) -> the largest zxid its headers carried
    for r in log:
        if r["kind"] in ("lost", "end", "expired") and r.get("upto") is not None:
            key = (r["session"], r["conn"])
            ended[key] = max(ended.get(key, 0), r["upto"])
    result = {"valid": True, "sessions": len({r["session"] for r in conns.values()}), "connections": len(conns),
              "events": len(events), "errors": []}
    if events and all(e["zxid"] <= 0 for e in events):
        result.update(valid=None, why="the server's notifications carry no zxid")
        return result
    errors = result["errors"]
    last = {}  # session -> last zxid told
    told = {}  # (session, conn) -> zxids told
    invented = {}  # key -> zxids told that no acknowledged write made
    for e in events:
        s, c, z = e["session"], e["conn"], e["zxid"]
        key = e["path"][len(root):] if e["path"] and e["path"].startswith(root) else None
        if e["type"] != NODE_DATA_CHANGED or not key:
            errors.append({"unexpected": e})
            continue
        if z <= last.get(s, 0):
            errors.append({"out_of_order": e, "after": last.get(s, 0)})
        last[s] = max(z, last.get(s, 0))
        conn = conns.get((s, c))
        if conn is None:
            errors.append({"before_registration": e})
        elif z <= conn["since"]:
            errors.append({"before_registration": e, "since": conn["since"]})
        told.setdefault((s, c), set()).add(z)
        if z in written:
            if written[z][0] != key:
                errors.append({"wrong_key": e, "write": written[z][1]})
        else:
            invented.setdefault(key, set()).add(z)
    for key, zs in invented.items():
        if len(zs) > unknown.get(key, 0):
            errors.append({"invented": key, "zxids": sorted(zs)[:10], "timed_out_writes": unknown.get(key, 0)})
    missed = 0
    for (s, c) in set(told) | set(conns):
        zs = told.get((s, c), set())
        since = conns[(s, c)]["since"] if (s, c) in conns else max(zs)
        upto = max([ended.get((s, c), 0)] + list(zs))
        for key, writes in by_key.items():
            for z in writes:
                if since < z <= upto and z not in zs:
                    missed += 1
                    if missed <= 10:
                        errors.append({"missed": {"session": s, "conn": c, "key": key, "zxid": z,
                                                  "write": written[z][1], "since": since, "upto": upto}})
    result["missed"] = missed
    result["told"] = sum(len(zs) for zs in told.values())
    if errors:
        result["valid"] = False
        del errors[20:]
    return result
