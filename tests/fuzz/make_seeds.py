#!/usr/bin/python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ from real traffic
and real files: requests from the tests' jute codec, peer handshakes,
captured simulation traffic (corral-sim --capture), the snapshots (plain
and compressed) and log a running corrald wrote, the snapshots and log a running Apache ZooKeeper wrote (in
each of its encodings), and hand-written DNS, HTTP, JSON and SASL inputs.

    PYTHONPATH=tests tests/fuzz/make_seeds.py [BUILD_DIR]     (default: build)
"""
import hashlib
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
from corral_harness import jute
from corral_harness import peer_wire

BUILD = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "build").resolve()
CORPUS = HERE / "corpus"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def jute_seeds():
    W = jute.Writer
    digest = [(31, "digest", "fuzz:x")]
    seeds = {
        "create": (jute.CREATE, jute.create_body("/a", b"data")),
        "create-ephemeral-sequential": (jute.CREATE, jute.create_body("/a/e-", b"", flags=3)),
        "create-digest-acl": (jute.CREATE, jute.create_body("/guarded", b"x", acls=digest)),
        "create2": (jute.CREATE2, jute.create_body("/b", b"")),
        "create-ttl": (21, W().string("/t").buffer(b"").acls(jute.WORLD_ANYONE_ALL).int(5).long(10000).bytes()),
        "create-container": (19, jute.create_body("/c", b"", flags=4)),
        "set-data": (jute.SET_DATA, jute.set_data_body("/a", b"new")),
        "delete": (jute.DELETE, jute.delete_body("/a")),
        "set-acl": (7, W().string("/a").acls(digest).int(-1).bytes()),
        "multi": (jute.MULTI, jute.multi_body([(jute.CREATE, jute.create_body("/m", b"1")),
                                               (jute.SET_DATA, jute.set_data_body("/m", b"2")),
                                               (jute.CHECK, jute.check_body("/m", 1)),
                                               (jute.DELETE, jute.delete_body("/m"))])),
    }
    for name, (op, body) in seeds.items():
        put("jute", name, struct.pack(">i", op) + body)
    put("jute", "connect", jute.connect_request())


def peer_seeds():
    put("peer_hello", "hello-v1", peer_wire.hello_v1(peer_wire.QUORUM, 2)[4:])
    put("peer_hello", "hello-v2", peer_wire.hello_v2(peer_wire.QUORUM, 2, b"n" * 32, offers=True, user=b"member")[4:])
    put("peer_hello", "hello-v2-election", peer_wire.hello_v2(peer_wire.ELECTION, 3, b"m" * 32)[4:])
    put("peer_hello", "challenge", peer_wire.pack([b"corral-peer-challenge", 1, b"c" * 32, b"p" * 32]))
    put("peer_hello", "proof", peer_wire.pack([b"q" * 32]))


def sim_seeds():
    sim = BUILD / "tests" / "corral-sim"
    for seed, limit, consensus in [(1, 64, "zab"), (2, 300, "zab"), (3, 1000, "zab"), (1, 64, "raft"),
                                   (2, 300, "raft"), (3, 1000, "raft")]:
        out = pathlib.Path(tempfile.mktemp())
        subprocess.run([str(sim), "--seed", str(seed), "--consensus", consensus, "--capture", str(out),
                        "--capture-limit", str(limit)], check=True, capture_output=True)
        data = out.read_bytes()
        out.unlink()
        if consensus == "zab":
            put("peer_messages", f"traffic-{seed}-{limit}", data)
        # Its quorum messages, one per file, for the module's decoder.
        at, kinds = 0, {}
        while at + 4 <= len(data):
            n = (data[at + 2] << 8) | data[at + 3]
            msg = data[at + 4:at + 4 + n]
            if data[at + 1] & 1 and msg:
                kinds.setdefault((msg[:3], len(msg).bit_length()), msg)
            at += 4 + n
        for msg in kinds.values():
            put(f"{consensus}_message", hashlib.sha1(msg).hexdigest()[:16], msg)


def corrald_files(work, *sets):
    """Runs corrald on `work` with a small workload that snapshots every 40
    entries; returns its wal directory."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    args = [str(BUILD / "kernel" / "corrald"), "--set", f'server.client_address="127.0.0.1:{port}"',
            "--set", f'server.data_dir="{work}"', "--set", "server.extended_types=true",
            "--set", "storage.wal.snapshot_every_entries=40",
            "--set", f'server.plugin_dir=["{BUILD / "plugins"}"]']
    for kv in sets:
        args += ["--set", kv]
    srv = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            try:
                c = jute.RawClient("127.0.0.1", port)
                break
            except OSError:
                time.sleep(0.05)
        c.handshake()
        c.request(jute.CREATE, jute.create_body("/app", b"config"))
        c.request(jute.CREATE, jute.create_body("/app/lock-", b"", flags=3))
        c.request(jute.CREATE, jute.create_body("/guarded", b"x", acls=[(31, "digest", "fuzz:x")]))
        for i in range(45):
            c.request(jute.CREATE, jute.create_body(f"/app/n{i}", b"v" * (i % 7)))
        time.sleep(0.5)
        c.close()
    finally:
        srv.terminate()
        srv.wait()
    return work / "wal"


def snapshot_seeds():
    work = pathlib.Path(tempfile.mkdtemp())
    try:
        wal = corrald_files(work)
        for f in sorted(wal.glob("snapshot.*")):
            b = f.read_bytes()
            total = int.from_bytes(b[-16:-8], "little")
            put("snapshot", f.name, b[20:20 + total])
        for f in sorted(wal.glob("log.*"))[:1]:
            b = f.read_bytes().rstrip(b"\0")
            put("wal_segment", "segment", b)
            put("wal_segment", "segment-torn", b[:-5])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def wal_snapshot_seeds():
    """Whole snapshot files as the wal writes them, plain and zstd-compressed."""
    for compression in ("none", "zstd"):
        work = pathlib.Path(tempfile.mkdtemp())
        try:
            wal = corrald_files(work, f'storage.wal.snapshot_compression="{compression}"')
            for f in sorted(wal.glob("snapshot.*"))[:2]:
                put("wal_snapshot", f"{compression}-{f.name}", f.read_bytes())
        finally:
            shutil.rmtree(work, ignore_errors=True)


def zookeeper_seeds():
    """Files of Debian's ZooKeeper 3.8, prefixed with the reader's mode byte
    (fuzz_zk_data.cpp): snapshots plain, gzip and snappy, and a log."""
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl
    from corral_harness.servers import Server
    for mode, method in ((0, ""), (2, "gz"), (3, "snappy")):
        work = pathlib.Path(tempfile.mkdtemp())
        srv = Server(work, target="zookeeper", extended_types=True,
                     zk_properties=["-Dzookeeper.snapCount=20",
                                    f"-Dzookeeper.snapshot.compression.method={method}"])
        srv.start()
        try:
            c = KazooClient(hosts=srv.hosts)
            c.start()
            c.create("/app", b"config")
            c.create("/app/guarded", b"x", acl=[make_digest_acl("fuzz", "x", all=True)])
            c.create("/app/lock-", b"", ephemeral=True, sequence=True)
            for i in range(30):
                c.create(f"/app/n{i}", b"v" * (i % 7))
            t = c.transaction()
            t.create("/app/m", b"x")
            t.delete("/app/n1")
            t.commit()
            c.stop()
            c.close()
        finally:
            srv.kill()
        v2 = srv.data_dir / "version-2"
        snaps = sorted(v2.glob("snapshot.*"), key=lambda f: f.stat().st_size)
        put("zk_data", f"snapshot-{method or 'plain'}", bytes([mode]) + snaps[-1].read_bytes())
        if mode == 0:
            for f in sorted(v2.glob("log.*"))[:2]:
                put("zk_data", f"log-{f.name}", bytes([1]) + f.read_bytes().rstrip(b"\0") + bytes(16))
        shutil.rmtree(work, ignore_errors=True)


def dns_query(name, qtype=33, edns=None):
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 1 if edns else 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack(">HHIH", 41, edns, 0, 0)
    return q


def text_seeds():
    put("dns", "srv", dns_query("web.service.corral"))
    put("dns", "a", dns_query("i-1.web.service.corral", qtype=1))
    put("dns", "srv-edns", dns_query("web.service.corral", edns=4096))
    put("http_head", "get", b"GET /commands/srvr HTTP/1.1\r\nHost: x\r\n\r\n")
    put("http_head", "put", b"PUT /v1/registry/services/web/i-1?ttl=10&x HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 12\r\nContent-Type: application/json\r\n\r\n")
    put("http_head", "query", b"GET /v1/registry/services/web?consistent&wait=5s&name=a%20b+c HTTP/1.0\r\n\r\n")
    put("json", "instance", b'{"name":"web","id":"i-1","address":"10.0.0.1","port":80,"sslPort":null,'
                            b'"payload":{"k":[1,2.5,-3e4,true,false,null,"\\u00e9"]},"registrationTimeUTC":0,'
                            b'"serviceType":"DYNAMIC","uriSpec":null,"enabled":true}')
    put("json", "nested", b'[[[[{"a":"\\n\\t\\"x\\""}]]]]')
    put("sasl", "response", b'charset=utf-8,username="alice",realm="zk-sasl-md5",nonce="OA6MG9tEQGm2hh",nc=00000001,'
                            b'cnonce="OA6MHXh6VqTrRk",digest-uri="zookeeper/zk-sasl-md5",maxbuf=65536,'
                            b'response=d388dad90d4bbd760a152321f2143af7,qop=auth,authzid="alice"')
    put("sasl", "bad", b'username=bob,nonce="x",response=00')


if __name__ == "__main__":
    jute_seeds()
    peer_seeds()
    sim_seeds()
    snapshot_seeds()
    wal_snapshot_seeds()
    zookeeper_seeds()
    text_seeds()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")
