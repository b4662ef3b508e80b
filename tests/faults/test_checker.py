"""The checkers catch what they must, on histories written by hand."""
from faults.checker import (check_ephemerals, check_mutex, check_registers, check_sequential, check_set,
                            check_watches, linearizable, minimise)

_ids = iter(range(1_000_000))


def op(f, call, ret, args=None, result=None, status="ok", process=0, key="k", workload="register"):
    return {"id": next(_ids), "process": process, "workload": workload, "f": f, "key": key, "args": args,
            "status": status, "result": result, "call": call, "ret": None if status == "info" else ret}


def valid(ops):
    return linearizable(ops, (0, 0))["valid"]


def test_sequential_history_is_linearizable():
    h = [op("write", 0, 1, 5, 1), op("read", 2, 3, result=[5, 1]), op("cas", 4, 5, [1, 9], 2),
         op("read", 6, 7, result=[9, 2])]
    assert valid(h) is True


def test_concurrent_operations_may_take_effect_in_either_order():
    # Two overlapping writes; a later read sees the one that was called first.
    h = [op("write", 0, 10, 1, 2, process=1), op("write", 1, 9, 2, 1, process=2),
         op("read", 11, 12, result=[1, 2], process=3)]
    assert valid(h) is True


def test_stale_read_is_rejected():
    # The write of 5 returned before the read was called, yet the read saw
    # the value from before it.
    h = [op("write", 0, 1, 5, 1), op("read", 2, 3, result=[0, 0], process=1)]
    r = linearizable(h, (0, 0))
    assert r["valid"] is False


def test_lost_acknowledged_write_is_rejected():
    # Write 7 was acknowledged with version 2, but a later read shows
    # version 2 holding another value, and no trace of 7.
    h = [op("write", 0, 1, 3, 1), op("write", 2, 3, 7, 2, process=1), op("write", 4, 5, 8, 2, process=2),
         op("read", 6, 7, result=[8, 2], process=3)]
    assert valid(h) is False


def test_two_compare_and_sets_on_one_version_are_rejected():
    h = [op("cas", 0, 5, [0, 1], 1, process=1), op("cas", 1, 6, [0, 2], 1, process=2)]
    assert valid(h) is False
    # Without the version the server returned, still no order makes both
    # succeed: the second expects version 0, which the first moved on.
    assert check_registers(h, reads=False)["valid"] is False


def test_indeterminate_write_may_take_effect_late_or_never():
    late = [op("write", 0, None, 4, status="info", process=1), op("read", 5, 6, result=[0, 0], process=2),
            op("read", 7, 8, result=[4, 1], process=3)]
    assert valid(late) is True
    never = [op("write", 0, None, 4, status="info", process=1), op("read", 5, 6, result=[0, 0], process=2)]
    assert valid(never) is True
    # ...but not before it was called.
    early = [op("read", 0, 1, result=[4, 1], process=2), op("write", 2, None, 4, status="info", process=1)]
    assert valid(early) is False


def test_failed_operations_are_not_placed():
    h = [op("cas", 0, 1, [3, 4], status="fail"), op("read", 2, 3, result=[0, 0], process=1)]
    assert valid(h) is True


def test_read_that_goes_back_in_time_is_rejected():
    h = [op("write", 0, 10, 1, 1, process=1), op("read", 2, 3, result=[1, 1], process=2),
         op("read", 4, 5, result=[0, 0], process=3)]
    assert valid(h) is False


def test_minimise_finds_the_few_operations_that_show_a_violation():
    noise = [op("write", 10 * i, 10 * i + 1, 100 + i, i + 1, key="k") for i in range(30)]
    stale = op("read", 1000, 1001, result=[100, 1], process=9)
    h = noise + [stale]
    assert valid(h) is False
    small = minimise(h, lambda sub: linearizable(sub, (0, 0))["valid"] is False)
    assert stale in small and len(small) <= 3, small
    r = check_registers(h)
    assert r["valid"] is False and r["failures"][0]["minimal"] is not None


def test_keys_are_checked_apart():
    h = [op("write", 0, 1, 5, 1, key="a"), op("read", 2, 3, result=[0, 0], key="b"),
         op("read", 4, 5, result=[0, 0], key="a")]
    r = check_registers(h)
    assert r["valid"] is False and [f["key"] for f in r["failures"]] == ["a"]
    assert check_registers(h, reads=False)["valid"] is True


def test_set_checker_finds_lost_and_unexpected_elements():
    h = [op("add", 0, 1, "e1", workload="set"), op("add", 0, 1, "e2", workload="set"),
         op("add", 0, None, "e3", status="info", workload="set"),
         op("add", 0, 1, "e4", status="fail", workload="set")]
    good = check_set(h, {"s1": ["e1", "e2", "e3"], "s2": ["e1", "e2", "e3"]})
    assert good["valid"] is True and good["recovered_indeterminate"] == 1
    lost = check_set(h, {"s1": ["e1"]})
    assert lost["valid"] is False and lost["lost"] == ["e2"]
    unexpected = check_set(h, {"s1": ["e1", "e2", "e4"]})
    assert unexpected["valid"] is False and unexpected["unexpected"] == ["e4"]
    diverged = check_set(h, {"s1": ["e1", "e2"], "s2": ["e1", "e2", "e3"]})
    assert diverged["valid"] is False and diverged["diverged"] == ["s2"]


def test_sequential_checker_finds_duplicates_reordering_and_loss():
    def create(call, ret, counter, process=0):
        return op("create", call, ret, result=f"/q/n-{counter:010d}", key="/q", workload="sequential",
                  process=process)

    final = {"/q": [f"n-{i:010d}" for i in range(5)]}
    ok = [create(0, 1, 0), create(2, 3, 1), create(2, 5, 3, 1), create(2.5, 4, 2, 2)]
    assert check_sequential(ok, final)["valid"] is True
    backwards = [create(0, 1, 2), create(2, 3, 1)]
    assert check_sequential(backwards, final)["valid"] is False
    duplicate = [create(0, 1, 1), create(0, 1, 1, 1)]
    assert check_sequential(duplicate, final)["valid"] is False
    lost = [create(0, 1, 7)]
    r = check_sequential(lost, final)
    assert r["valid"] is False and r["errors"][0]["lost"] == ["n-0000000007"]


def test_ephemeral_checker_catches_an_ephemeral_gone_while_its_session_lives():
    def eph(f, call, ret, result=None, status="ok", key="s1"):
        return op(f, call, ret, result=result, status=status, key=key, workload="ephemeral")

    fine = [eph("create", 0, 1), eph("check", 2, 3, True), eph("check", 4, 5, False)]
    assert check_ephemerals(fine)["valid"] is True  # the session may have expired then
    bad = fine + [eph("check", 6, 7, True)]
    assert check_ephemerals(bad)["valid"] is False
    other_session = fine + [eph("check", 6, 7, True, key="s2")]
    assert check_ephemerals(other_session)["valid"] is True


def test_mutex_checker_catches_overlapping_holds_and_tokens_going_back():
    def m(f, call, ret, process, args=None, result=None, status="ok"):
        return op(f, call, ret, args=args, result=result, status=status, process=process, workload="mutex")

    def hold(process, t0, t1, n):
        name = f"_c_x-lock-{n:010d}"
        return [m("acquire", t0, t0 + 1, process, result=name), m("release", t1, t1 + 1, process, args=name)]

    apart = hold(1, 0, 5, 1) + hold(2, 6, 9, 2)
    assert check_mutex(apart)["valid"] is True
    overlap = hold(1, 0, 5, 1) + hold(2, 2, 9, 2)
    assert check_mutex(overlap)["valid"] is False
    backwards = hold(1, 0, 5, 2) + hold(2, 6, 9, 1)
    assert check_mutex(backwards)["valid"] is False
    # A hold whose release failed (its node was gone: the session expired)
    # does not count.
    lost = [m("acquire", 0, 1, 1, result="_c_x-lock-0000000001"),
            m("release", 8, 9, 1, args="_c_x-lock-0000000001", status="fail")] + hold(2, 2, 9, 2)
    assert check_mutex(lost)["valid"] is True


def test_watch_checker_catches_gaps_disorder_and_invented_changes():
    def w(call, zxid, key="k", status="ok", version=1):
        o = op("write", call, call + 1, 1, version, status=status, key=key)
        if status == "ok":
            o["zxid"] = zxid
        return o

    def conn(session, c, since):
        return {"kind": "conn", "session": session, "conn": c, "since": since}

    def ev(session, c, zxid, key="k", etype=3):
        return {"kind": "event", "session": session, "conn": c, "zxid": zxid, "type": etype,
                "path": f"/faults/reg/{key}"}

    writes = [w(0, 10), w(2, 11, key="j"), w(4, 12)]
    whole = [conn(1, 1, 5), ev(1, 1, 10), ev(1, 1, 11, "j"), ev(1, 1, 12)]
    assert check_watches(writes, whole)["valid"] is True
    # A reconnect may miss what happened while cut off, never what came
    # between two changes it was told of.
    cut = [conn(1, 1, 5), ev(1, 1, 10), conn(1, 2, 11), ev(1, 2, 12)]
    assert check_watches(writes, cut)["valid"] is True
    gap = [conn(1, 1, 5), ev(1, 1, 10), ev(1, 1, 12)]
    r = check_watches(writes, gap)
    assert r["valid"] is False and r["missed"] == 1
    disorder = [conn(1, 1, 5), ev(1, 1, 11, "j"), ev(1, 1, 10), ev(1, 1, 12)]
    assert check_watches(writes, disorder)["valid"] is False
    twice = whole + [conn(1, 2, 12), ev(1, 2, 12)]
    assert check_watches(writes, twice)["valid"] is False
    wrong_key = [conn(1, 1, 5), ev(1, 1, 10), ev(1, 1, 11, "k"), ev(1, 1, 12)]
    assert check_watches(writes, wrong_key)["valid"] is False
    # A change no write made is invented, unless a write timed out (it may
    # have happened, once).
    invented = whole + [ev(1, 1, 13)]
    assert check_watches(writes, invented)["valid"] is False
    assert check_watches(writes + [w(5, None, status="info")], invented)["valid"] is True
    assert check_watches(writes + [w(5, None, status="info")], invented + [ev(1, 1, 14)])["valid"] is False
    stale = [conn(1, 1, 11), ev(1, 1, 10), ev(1, 1, 12)]
    assert check_watches(writes, stale)["valid"] is False
    created = whole + [ev(1, 1, 13, etype=1)]
    assert check_watches(writes, created)["valid"] is False
    # A connection that was told nothing, or stopped being told, while its
    # server answered with later zxids (pings) missed changes too.
    def end(session, c, upto):
        return {"kind": "lost", "session": session, "conn": c, "upto": upto}

    silent = [conn(1, 1, 5), end(1, 1, 12)]
    r = check_watches(writes, silent)
    assert r["valid"] is False and r["missed"] == 3
    stopped = [conn(1, 1, 5), ev(1, 1, 10), end(1, 1, 12)]
    assert check_watches(writes, stopped)["missed"] == 2
    assert check_watches(writes, whole + [end(1, 1, 12)])["valid"] is True
    behind = [conn(1, 1, 5), ev(1, 1, 10), end(1, 1, 10)]  # its server had applied no more
    assert check_watches(writes, behind)["valid"] is True
    # A server that sends no zxid with its notifications cannot be checked.
    blind = [conn(1, 1, 5), ev(1, 1, -1), ev(1, 1, -1)]
    assert check_watches(writes, blind)["valid"] is None
