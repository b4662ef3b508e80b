"""Loopback plumbing shared by the harness: ports, four-letter words, the
ZooKeeper classpath, and the servers whose logs a failing test reports."""
import os
import random
import socket

_live_servers = []  # servers whose logs are attached to failing tests


_handed_out = set()  # never the same port twice in one run


def free_port():
    """A port that is free now, chosen below the kernel's ephemeral range so
    that no outgoing connection (a peer's dial, a client) can take it as its
    local port before the server binds it."""
    low, _ = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    for _ in range(200):
        port = random.randrange(20000, max(20001, min(low, 32768)))
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(host, port, word, timeout=5.0):
    """Send a four-letter word and return the whole reply as text."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def zookeeper_classpath():
    # zkEnv.sh uses /usr/share/java/zookeeper.jar, whose manifest Class-Path
    # pulls in its dependencies; slf4j-simple gives us a readable log.
    # Netty (the TLS client socket and server factory) is not on that path:
    # its jars are added by name.
    jars = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"]
    jars += [f"/usr/share/java/netty-{m}.jar" for m in (
        "buffer", "codec", "common", "handler", "resolver", "transport",
        "transport-native-epoll", "transport-native-unix-common")]
    return ":".join(j for j in jars if os.path.exists(j))


# The names the suites have long used.
_zookeeper_classpath = zookeeper_classpath
