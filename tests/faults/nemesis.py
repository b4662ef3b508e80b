"""Faults, chosen at random from a seed, one at a time, each healed before
the next:

    partition-minority  a random minority cut off from the rest
    partition-leader    the current leader cut off from the rest
    partition-bridge    two halves that cannot see each other and one
                        server that sees both
    partition-halves    a random split into two halves
    loss                every server drops 20-40 % of what it receives
    delay               every server's packets wait 20-200 ms, each its own
                        draw within +/- half of that, so they are reordered
    pause               SIGSTOP a server (the leader half the time) for 1-5 s,
                        or for 8-10 s, longer than a client session
    kill                kill -9 a server (the leader half the time), restarted
                        1-5 s later
    disk-full           a server's data folder (its own small tmpfs) filled to
                        the last byte, then freed
    fsync-fail          a server's fsync and fdatasync fail with EIO (an
                        LD_PRELOAD library, faulty_fsync.cpp); then the disk
                        is good again and the server is restarted, as an
                        operator would after such an error

Each fault is recorded in the history with its start and end, and so is
each quiet spell (no fault, while a check of the whole ensemble runs).
"""
import os
import random
import threading

from corral_harness.net import four_letter

NEMESES = ("partition-minority", "partition-leader", "partition-bridge", "partition-halves", "loss", "delay",
           "pause", "kill", "disk-full", "fsync-fail")


def fill(path):
    """Allocates all the free space of path's file system to one file, in
    ever smaller pieces until not one page more fits; returns the bytes."""
    st = os.statvfs(path.parent)
    chunk, size = max(st.f_bavail * st.f_frsize, 4096), 0
    with open(path, "wb") as f:
        while chunk >= 4096:
            try:
                os.posix_fallocate(f.fileno(), size, chunk)
                size += chunk
            except OSError:
                chunk //= 2
    return size


def leader_of(ensemble):
    for i, m in enumerate(ensemble.members):
        if not m.proc:
            continue
        try:
            if "Mode: leader" in four_letter(m.host, m.port, "srvr", timeout=1.0):
                return i
        except OSError:
            pass
    return None


class Nemesis(threading.Thread):
    def __init__(self, ensemble, network, history, kinds, seed, interval=(2.0, 5.0), hold=(1.0, 5.0),
                 quiet_every=None, on_quiet=None):
        super().__init__(daemon=True)
        unknown = set(kinds) - set(NEMESES)
        if unknown:
            raise ValueError(f"unknown nemesis {sorted(unknown)}; known: {', '.join(NEMESES)}")
        self.ens, self.net, self.history = ensemble, network, history
        self.kinds = list(kinds)
        self.rng = random.Random(seed)
        self.interval, self.hold = interval, hold
        self.stopping = threading.Event()
        self.counts = {}
        self.exits = []  # servers that exited by themselves, restarted
        self.error = None
        # Every quiet_every seconds, once the fault of the moment is healed,
        # on_quiet() runs before the next fault (a check that needs a whole
        # ensemble, such as the registry's convergence); its answers here.
        self.quiet_every, self.on_quiet = quiet_every, on_quiet
        self.quiet = []

    def stop(self):
        self.stopping.set()

    def run(self):
        try:
            last_quiet = self.history.now()
            while not self.stopping.wait(self.rng.uniform(*self.interval)):
                kind = self.rng.choice(self.kinds)
                self.counts[kind] = self.counts.get(kind, 0) + 1
                getattr(self, "_" + kind.replace("-", "_"))()
                self.reap()
                if self.on_quiet and self.history.now() - last_quiet >= self.quiet_every \
                        and not self.stopping.is_set():
                    self.heal_all()
                    rec = self.history.fault("quiet", None)
                    self.quiet.append(self.on_quiet())
                    self.history.healed(rec)
                    last_quiet = self.history.now()
        except Exception as e:  # reported by the run, which then fails
            self.error = e
        finally:
            self.heal_all()

    def _hold(self, span=None):
        self.stopping.wait(self.rng.uniform(*(span or self.hold)))

    def _ids(self):
        return [m.sid for m in self.ens.members]

    def _partition(self, kind, groups):
        rec = self.history.fault(kind, [sorted(g) for g in groups])
        self.net.partition(groups)
        self._hold()
        self.net.heal()
        self.history.healed(rec)

    def _partition_minority(self):
        ids = self._ids()
        size = self.rng.randint(1, (len(ids) - 1) // 2)
        minority = set(self.rng.sample(ids, size))
        self._partition("partition-minority", [minority, set(ids) - minority])

    def _partition_leader(self):
        ids = self._ids()
        leader = leader_of(self.ens)
        lone = self.ens.members[leader].sid if leader is not None else self.rng.choice(ids)
        self._partition("partition-leader", [{lone}, set(ids) - {lone}])

    def _partition_halves(self):
        ids = self._ids()
        self.rng.shuffle(ids)
        half = len(ids) // 2
        self._partition("partition-halves", [set(ids[:half]), set(ids[half:])])

    def _partition_bridge(self):
        ids = self._ids()
        self.rng.shuffle(ids)
        bridge, rest = ids[0], ids[1:]
        a, b = rest[:len(rest) // 2], rest[len(rest) // 2:]
        pairs = [(x, y) for x in a for y in b]
        rec = self.history.fault("partition-bridge", {"bridge": bridge, "halves": [sorted(a), sorted(b)]})
        self.net.cut(pairs)
        self._hold()
        self.net.heal()
        self.history.healed(rec)

    def _loss(self):
        p = round(self.rng.uniform(0.2, 0.4), 2)
        rec = self.history.fault("loss", p)
        self.net.lose(p)
        self._hold()
        self.net.heal()
        self.history.healed(rec)

    def _delay(self):
        ms = self.rng.randint(20, 200)
        rec = self.history.fault("delay", {"ms": ms, "jitter": ms // 2})
        self.net.delay(ms, ms // 2)
        self._hold()
        self.net.heal()
        self.history.healed(rec)

    def _victim(self):
        running = [i for i, m in enumerate(self.ens.members) if m.proc]
        if not running:
            return None
        if self.rng.random() < 0.5:
            leader = leader_of(self.ens)
            if leader is not None:
                return leader
        return self.rng.choice(running)

    def _pause(self):
        i = self._victim()
        if i is None:
            return
        long = self.rng.random() < 0.25
        rec = self.history.fault("pause", {"server": self.ens.members[i].sid, "long": long})
        self.ens.pause(i)
        self._hold((8.0, 10.0) if long else None)
        self.ens.resume(i)
        self.history.healed(rec)

    def _kill(self):
        i = self._victim()
        if i is None:
            return
        rec = self.history.fault("kill", {"server": self.ens.members[i].sid})
        self.ens.kill(i)
        self._hold()
        self.ens.start_member(i, wait=False)
        self.history.healed(rec)

    def _disk_full(self):
        i = self._victim()
        if i is None:
            return
        m = self.ens.members[i]
        filler = m.data_dir / "filler"
        rec = self.history.fault("disk-full", {"server": m.sid, "filled": fill(filler)})
        self._hold()
        filler.unlink()
        self.history.healed(rec)

    def _fsync_fail(self):
        i = self._victim()
        if i is None:
            return
        m = self.ens.members[i]
        flag = m.workdir / "fsync-fails"
        rec = self.history.fault("fsync-fail", {"server": m.sid})
        flag.write_text("")
        self._hold()
        flag.unlink()
        self.ens.kill(i)
        self.ens.start_member(i, wait=False)
        self.history.healed(rec)

    def reap(self):
        """Servers that exited by themselves (ZooKeeper exits on a full disk
        or a failed fsync) are recorded and started again, as a supervisor
        would start them."""
        for i, m in enumerate(self.ens.members):
            if m.proc and m.proc.poll() is not None:
                self.exits.append({"server": m.sid, "code": m.proc.returncode, "at": self.history.now()})
                self.ens.kill(i)
                self.ens.start_member(i, wait=False)

    def heal_all(self):
        self.net.heal()
        for m in self.ens.members:
            for leftover in (m.data_dir / "filler", m.workdir / "fsync-fails"):
                if leftover.exists():
                    leftover.unlink()
        self.reap()
        for i, m in enumerate(self.ens.members):
            if m.proc:
                self.ens.resume(i)
            else:
                self.ens.start_member(i, wait=False)
