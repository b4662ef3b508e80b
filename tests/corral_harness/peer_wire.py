"""The peer ports' wire format, for tests that talk to them as a stranger or
as a member would: frames (4-byte big-endian length), the little msgpack the
handshake uses, and the handshake itself (kernel/peer/peer_auth.hpp)."""
import hashlib
import hmac
import os
import socket
import struct

QUORUM, ELECTION = 0, 1
MAGIC = b"corral-peer"


def pack(v):
    """msgpack for ints, bools, bytes and lists: what the handshake sends."""
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7f:
            return bytes([v])
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, (bytes, str)):
        b = v.encode() if isinstance(v, str) else v
        return (bytes([0xc4, len(b)]) if len(b) < 256 else b"\xc5" + struct.pack(">H", len(b))) + b
    if isinstance(v, list):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(pack(x) for x in v)
    raise TypeError(v)


def frame(body):
    return struct.pack(">I", len(body)) + body


def hello_v1(channel, sid):
    return frame(pack([MAGIC, 1, channel, sid]))


def hello_v2(channel, sid, nonce, offers=False, user=b""):
    return frame(pack([MAGIC, 2, channel, sid, offers, user, nonce]))


def proof(key, side, channel, dialer, acceptor, dialer_nonce, acceptor_nonce):
    msg = (b"corral-peer-" + side + bytes([channel]) + struct.pack(">qq", dialer, acceptor) +
           dialer_nonce + acceptor_nonce)
    return hmac.new(key, msg, hashlib.sha256).digest()


def recv_frame(s):
    head = _recv_exact(s, 4)
    return _recv_exact(s, struct.unpack(">I", head)[0])


def _recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def parse_challenge(body):
    """[magic, acceptor id, nonce (32), proof] -> (id, nonce, proof); only the
    encodings the server writes for these fields."""
    assert body[0] == 0x94, body
    i = 1

    def take_bytes():
        nonlocal i
        assert body[i] == 0xc4, body[i:]
        n = body[i + 1]
        v = body[i + 2:i + 2 + n]
        i += 2 + n
        return v

    def take_int():
        nonlocal i
        t = body[i]
        if t <= 0x7f:
            i += 1
            return t
        width = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[t]
        v = int.from_bytes(body[i + 1:i + 1 + width], "big", signed=t >= 0xd0)
        i += 1 + width
        return v

    assert take_bytes() == b"corral-peer-challenge"
    sid = take_int()
    nonce = take_bytes()
    prf = take_bytes()
    return sid, nonce, prf


def authenticate(host, port, channel, sid, acceptor_id, key, user=b"member", timeout=5):
    """A connection that has passed the handshake as member `sid` (proving
    with `key`), ready to send protocol messages."""
    s = socket.create_connection((host, port), timeout=timeout)
    nonce = os.urandom(32)
    s.sendall(hello_v2(channel, sid, nonce, offers=True, user=user))
    their_id, their_nonce, their_proof = parse_challenge(recv_frame(s))
    assert their_id == acceptor_id
    assert hmac.compare_digest(their_proof, proof(key, b"acceptor", channel, sid, acceptor_id, nonce, their_nonce))
    s.sendall(frame(pack([proof(key, b"dialer", channel, sid, acceptor_id, nonce, their_nonce)])))
    return s


def closed_by_peer(s, timeout=5):
    """True when the other side closes the connection within `timeout`."""
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
