"""Handshake: plain echo and the HMAC-SHA256 digest form, validated both ways with digests
computed here from the published keys (independently of neurtmp's helpers)."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

from neurtmp.errors import HandshakeError
from neurtmp.protocol._buffer import ReceiveBuffer
from neurtmp.protocol.handshake import ClientHandshake, ServerHandshake

TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
FMS_KEY = b"Genuine Adobe Flash Media Server 001" + TAIL
FP_KEY = b"Genuine Adobe Flash Player 001" + TAIL


def sha(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def offset(packet: bytes, scheme: int) -> int:
    if scheme == 0:
        return (packet[8] + packet[9] + packet[10] + packet[11]) % 728 + 12
    return (packet[772] + packet[773] + packet[774] + packet[775]) % 728 + 776


def seeded(seed: int):  # noqa: ANN201
    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


def digest_c1(scheme: int, seed: int = 1) -> tuple[bytes, bytes]:
    """A C1 as Flash Player builds it; returns (c1, its digest)."""
    body = bytearray(b"\x00\x00\x00\x00" + bytes((10, 0, 32, 18)) + seeded(seed)(1528))
    at = offset(bytes(body), scheme)
    digest = sha(FP_KEY[:30], bytes(body[:at] + body[at + 32 :]))
    body[at : at + 32] = digest
    return bytes(body), digest


def feed(side: ServerHandshake | ClientHandshake, data: bytes) -> bytes:
    buffer = ReceiveBuffer()
    buffer.feed(data)
    return side.receive(buffer)


@pytest.mark.parametrize("scheme", [0, 1])
def test_server_answers_a_digest_c1_with_signed_s1_and_s2(scheme: int) -> None:
    c1, c1_digest = digest_c1(scheme)
    server = ServerHandshake(random=seeded(2))
    reply = feed(server, b"\x03" + c1)
    assert server.digest and reply[0] == 3 and len(reply) == 1 + 2 * 1536
    s1, s2 = reply[1:1537], reply[1537:]
    assert s1[4:8] != b"\x00\x00\x00\x00"
    at = offset(s1, scheme)
    assert s1[at : at + 32] == sha(FMS_KEY[:36], s1[:at] + s1[at + 32 :])
    assert s2[1504:] == sha(sha(FMS_KEY, c1_digest), s2[:1504])
    # The client's C2, signed with the player key from S1's digest, completes it.
    body = bytes(1504)
    c2 = body + sha(sha(FP_KEY, s1[at : at + 32]), body)
    assert feed(server, c2) == b""
    assert server.done and server.c2_valid


def test_server_echoes_a_plain_c1() -> None:
    c1 = b"\x00" * 8 + seeded(3)(1528)
    server = ServerHandshake()
    reply = feed(server, b"\x03" + c1)
    assert not server.digest
    assert reply[1 + 1536 :] == c1  # S2 echoes C1
    assert reply[5:9] == b"\x00\x00\x00\x00"
    feed(server, reply[1:1537])
    assert server.done and server.c2_valid


def test_server_treats_a_c1_with_a_wrong_digest_as_plain() -> None:
    c1, _ = digest_c1(0)
    broken = bytearray(c1)
    broken[offset(c1, 0)] ^= 0xFF
    server = ServerHandshake()
    reply = feed(server, b"\x03" + bytes(broken))
    assert not server.digest and reply[1537:] == bytes(broken)


def test_client_validates_a_digest_server_and_signs_c2() -> None:
    client = ClientHandshake(random=seeded(4))
    c0c1 = client.start()
    c1 = c0c1[1:]
    at = offset(c1, 0)
    assert c1[at : at + 32] == sha(FP_KEY[:30], c1[:at] + c1[at + 32 :])
    s1 = bytearray(b"\x00" * 4 + bytes((4, 5, 0, 1)) + seeded(5)(1528))
    s_at = offset(bytes(s1), 1)
    s1[s_at : s_at + 32] = sha(FMS_KEY[:36], bytes(s1[:s_at] + s1[s_at + 32 :]))
    s2_body = seeded(6)(1504)
    s2 = s2_body + sha(sha(FMS_KEY, c1[at : at + 32]), s2_body)
    c2 = feed(client, b"\x03" + bytes(s1) + s2)
    assert client.done and client.digest
    assert c2[1504:] == sha(sha(FP_KEY, bytes(s1[s_at : s_at + 32])), c2[:1504])


def test_client_refuses_a_digest_server_with_a_forged_s2() -> None:
    client = ClientHandshake()
    client.start()
    s1 = bytearray(b"\x00" * 4 + bytes((4, 5, 0, 1)) + bytes(1528))
    s_at = offset(bytes(s1), 0)
    s1[s_at : s_at + 32] = sha(FMS_KEY[:36], bytes(s1[:s_at] + s1[s_at + 32 :]))
    with pytest.raises(HandshakeError, match="S2 is not signed"):
        feed(client, b"\x03" + bytes(s1) + bytes(1536))


def test_client_accepts_a_plain_server_and_echoes_s1() -> None:
    client = ClientHandshake()
    client.start()
    s1 = b"\x00" * 8 + seeded(7)(1528)
    assert feed(client, b"\x03" + s1 + bytes(1536)) == s1
    assert client.done and not client.digest


@pytest.mark.parametrize(("version", "message"), [(6, "RTMPE"), (4, "version 4")])
def test_wrong_version_is_refused_at_the_first_byte(version: int, message: str) -> None:
    with pytest.raises(HandshakeError, match=message):
        feed(ServerHandshake(), bytes((version,)))


def test_client_and_server_complete_in_memory_with_digest() -> None:
    client, server = ClientHandshake(), ServerHandshake()
    s0s1s2 = feed(server, client.start())
    c2 = feed(client, s0s1s2)
    feed(server, c2)
    assert client.done and server.done and client.digest and server.digest and server.c2_valid
