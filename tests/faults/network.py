"""A private network of network namespaces, one per server, on one bridge.

    net = Network(nodes=3)      # corral-f1 .. corral-f3 on one bridge
    net.address(1)              # 10.231.0.11, reachable from the root namespace
    net.partition([{1}, {2, 3}])   # 1 and {2,3} cannot reach each other
    net.lose(0.2)               # every server drops a fifth of what it receives
    net.heal()
    net.close()

Clients stay in the root namespace and reach every server through the
bridge (as 10.231.0.1); faults are iptables rules inside the servers'
namespaces, so they cut peer links and, for an isolated server, its
clients too, as a real switch failure would. Only addresses in 10.231.0.0/24
are used, on interfaces made here; nothing leaves the machine.

Needs root (CAP_NET_ADMIN) and iproute2 and iptables. One network at a time
per machine: a lock file guards the names, and leftovers of a run that
died are removed first.
"""
import fcntl
import os
import pathlib
import subprocess

PREFIX = "corral-f"
SWITCH = "corral-fsw"  # the bridge's namespace
UPLINK = "corralf0"  # the root namespace's port on the bridge
SUBNET = "10.231.0"
LOCK = "/run/corral-faults.lock"
NETEM = os.environ.get("CORRAL_NETEM",
                       str(pathlib.Path(__file__).resolve().parents[2] / "build/tests/corral-netem"))


def netem_available():
    """None when the delay tool (netem.cpp) is built, else why not."""
    if not os.access(NETEM, os.X_OK):
        return f"{NETEM} is not built (Debian's libnetfilter-queue-dev is missing)"
    return None


def _run(*cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def available():
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "the fault suite needs root for network namespaces"
    for tool in ("ip", "iptables"):
        if _run("sh", "-c", f"command -v {tool}", check=False).returncode != 0:
            return f"{tool} is not installed"
    return None


class Network:
    def __init__(self, nodes):
        why = available()
        if why:
            raise RuntimeError(why)
        self._lock = open(LOCK, "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.nodes = list(range(1, nodes + 1))
        self.cleanup()
        # The switch lives in a namespace of its own, so that the root
        # namespace's firewall (a Docker engine's FORWARD policy, say) never
        # sees the servers' traffic; the root namespace joins it by one veth.
        _run("ip", "netns", "add", SWITCH)
        _run("ip", "netns", "exec", SWITCH, "ip", "link", "add", "br0", "type", "bridge")
        _run("ip", "netns", "exec", SWITCH, "ip", "link", "set", "br0", "up")
        _run("ip", "link", "add", UPLINK, "type", "veth", "peer", "name", "up0", "netns", SWITCH)
        _run("ip", "addr", "add", f"{SUBNET}.1/24", "dev", UPLINK)
        _run("ip", "link", "set", UPLINK, "up")
        self._switch("ip", "link", "set", "up0", "master", "br0")
        self._switch("ip", "link", "set", "up0", "up")
        for n in self.nodes:
            ns, port = self.namespace(n), f"n{n}"
            _run("ip", "netns", "add", ns)
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            self._switch("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._switch("ip", "link", "set", port, "master", "br0")
            self._switch("ip", "link", "set", port, "up")
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.address(n)}/24", "dev", "eth0")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        self.delayers = []
        self.state = "healthy"

    @staticmethod
    def namespace(n):
        return f"{PREFIX}{n}"

    @staticmethod
    def address(n):
        return f"{SUBNET}.{10 + n}"

    def _switch(self, *cmd):
        return _run("ip", "netns", "exec", SWITCH, *cmd)

    def _in(self, n, *cmd):
        return _run("ip", "netns", "exec", self.namespace(n), *cmd)

    def partition(self, groups):
        """Each server reaches only the servers of its own group (and the
        clients in the root namespace, unless `isolate_clients`). A server
        in no group keeps every link (a bridge between the groups)."""
        self.heal()
        where = {}
        for g, members in enumerate(groups):
            for n in members:
                where[n] = g
        for n in self.nodes:
            if n not in where:
                continue
            for m in self.nodes:
                if m != n and m in where and where[m] != where[n]:
                    self._drop(n, self.address(m))
        self.state = "partition " + " | ".join(",".join(str(n) for n in sorted(g)) for g in groups)

    def cut(self, pairs):
        """Cuts exactly these links (pairs of servers), both ways."""
        self.heal()
        for a, b in pairs:
            self._drop(a, self.address(b))
            self._drop(b, self.address(a))
        self.state = "cut " + " ".join(f"{a}-{b}" for a, b in pairs)

    def _drop(self, n, address):
        self._in(n, "iptables", "-A", "INPUT", "-s", address, "-j", "DROP")
        self._in(n, "iptables", "-A", "OUTPUT", "-d", address, "-j", "DROP")

    def lose(self, probability, nodes=None):
        """Every packet a server receives is dropped with this probability."""
        self.heal()
        for n in nodes or self.nodes:
            self._in(n, "iptables", "-A", "INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random",
                     "--probability", str(probability), "-j", "DROP")
        self.state = f"loss {probability}"

    def delay(self, ms, jitter, nodes=None):
        """Every packet a server sends waits ms +/- jitter milliseconds,
        each its own draw, so packets are reordered too (netem.cpp holds
        them in an NFQUEUE)."""
        why = netem_available()
        if why:
            raise RuntimeError(why)
        self.heal()
        for n in nodes or self.nodes:
            p = subprocess.Popen(["ip", "netns", "exec", self.namespace(n), NETEM, "--queue", "0",
                                  "--delay", str(ms), "--jitter", str(jitter)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            line = p.stdout.readline()
            if not line.startswith("corral-netem: queue"):
                p.kill()
                raise RuntimeError(f"corral-netem did not start: {line}{p.stdout.read()}")
            self.delayers.append(p)
            self._in(n, "iptables", "-A", "OUTPUT", "-o", "eth0", "-j", "NFQUEUE", "--queue-num", "0",
                     "--queue-bypass")
        self.state = f"delay {ms}±{jitter} ms"

    def heal(self):
        for n in self.nodes:
            self._in(n, "iptables", "-F")
        # After the rules: what the delayers hold is released as they exit.
        for p in self.delayers:
            p.terminate()
        for p in self.delayers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.delayers = []
        self.state = "healthy"

    def cleanup(self):
        """Removes what this module made, including a dead run's leftovers."""
        names = _run("ip", "netns", "list", check=False).stdout.split("\n")
        for line in names:
            name = line.split(" ")[0]
            if name.startswith(PREFIX):
                _run("ip", "netns", "del", name, check=False)
        _run("ip", "link", "del", UPLINK, check=False)

    def close(self):
        self.heal()
        self.cleanup()
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()
