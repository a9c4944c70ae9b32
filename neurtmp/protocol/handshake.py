"""The RTMP handshake (spec 5.2), plain and with the Flash-era HMAC-SHA256 digest.

Plain: the client sends C0 (version 3) and C1 (time, four zero bytes, 1528 random
bytes); the server answers S0, S1 (its own random block) and S2 (an echo of C1); the
client ends with C2 (an echo of S1).

Digest (Flash Player 9+, librtmp, ffmpeg): C1's version field is non-zero and 32 bytes
somewhere in C1 are an HMAC-SHA256, keyed with the first 30 bytes of the Flash Player
key, of the other 1504 bytes. The digest position comes from one of two schemes: the
sum of bytes 8..11 (mod 728) + 12, or of bytes 772..775 (mod 728) + 776. A server that
finds a valid digest answers in kind: S1 carries a digest keyed with the first 36 bytes
of the media server key, at the same scheme's position, and S2's last 32 bytes are an
HMAC of its first 1504, keyed with HMAC(full server key, C1's digest). The client's C2
is built the same way from S1's digest and the full player key. The keys are public in
the RTMP literature. Encrypted handshakes (RTMPE, C0 = 6) are refused.

Simplifications: a server does not reject a C2 that fails validation (clients in the
wild differ); a client accepts a plain server, and a digest server's S2 that is either
correctly signed or an exact echo of C1.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable

from neurtmp.errors import HandshakeError
from neurtmp.protocol._buffer import ReceiveBuffer
from neurtmp.protocol.limits import HANDSHAKE_SIZE, RTMP_VERSION

__all__ = ["ClientHandshake", "ServerHandshake", "find_digest", "imprint_digest"]

_RANDOM_KEY_TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
#: "Genuine Adobe Flash Media Server 001" + 32 fixed bytes (68 bytes).
SERVER_KEY = b"Genuine Adobe Flash Media Server 001" + _RANDOM_KEY_TAIL
#: "Genuine Adobe Flash Player 001" + 32 fixed bytes (62 bytes).
PLAYER_KEY = b"Genuine Adobe Flash Player 001" + _RANDOM_KEY_TAIL
SERVER_KEY_SHORT = SERVER_KEY[:36]
PLAYER_KEY_SHORT = PLAYER_KEY[:30]

DIGEST_SIZE = 32
#: Version bytes we put in a digest S1 (an FMS 4.5-style server version).
SERVER_VERSION = bytes((4, 5, 0, 1))
#: Version bytes we put in a digest C1 (a Flash Player 9-era client version, like ffmpeg).
CLIENT_VERSION = bytes((9, 0, 124, 2))

RandomSource = Callable[[int], bytes]


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def digest_offset(packet: bytes | bytearray, scheme: int) -> int:
    """Where the digest sits in a C1/S1 for scheme 0 or 1."""
    base = 8 if scheme == 0 else 772
    return sum(packet[base : base + 4]) % 728 + base + 4


def _digest_at(packet: bytes | bytearray, offset: int, key: bytes) -> bytes:
    return _hmac(key, bytes(packet[:offset]) + bytes(packet[offset + DIGEST_SIZE :]))


def find_digest(packet: bytes | bytearray, key: bytes) -> int | None:
    """The offset of a valid digest in a C1/S1 (trying both schemes), or None."""
    for scheme in (0, 1):
        offset = digest_offset(packet, scheme)
        expected = _digest_at(packet, offset, key)
        if hmac.compare_digest(expected, bytes(packet[offset : offset + DIGEST_SIZE])):
            return offset
    return None


def imprint_digest(packet: bytearray, key: bytes, scheme: int = 0) -> int:
    """Write a digest into a C1/S1 in place; returns its offset."""
    offset = digest_offset(packet, scheme)
    packet[offset : offset + DIGEST_SIZE] = _digest_at(packet, offset, key)
    return offset


def signed_response(peer_digest: bytes, full_key: bytes, random: RandomSource) -> bytes:
    """An S2/C2: random bytes whose last 32 are an HMAC keyed from the peer's digest."""
    body = random(HANDSHAKE_SIZE - DIGEST_SIZE)
    return body + _hmac(_hmac(full_key, peer_digest), body)


def response_is_signed(response: bytes, own_digest: bytes, full_key: bytes) -> bool:
    """Whether an S2/C2 is signed for the digest we sent."""
    body = response[: HANDSHAKE_SIZE - DIGEST_SIZE]
    expected = _hmac(_hmac(full_key, own_digest), body)
    return hmac.compare_digest(expected, response[HANDSHAKE_SIZE - DIGEST_SIZE :])


def _check_version(version: int, who: str) -> None:
    if version == 6 or version == 8:
        raise HandshakeError(f"{who} asked for an encrypted handshake (RTMPE, version {version}); not supported")
    if version != RTMP_VERSION:
        raise HandshakeError(f"{who} sent RTMP version {version}; only 3 is supported")


class ServerHandshake:
    """The server side: reads C0+C1, answers S0+S1+S2, reads C2.

    Args:
        random: source of random bytes (os.urandom by default; tests inject their own).
    """

    def __init__(self, random: RandomSource = os.urandom, uptime_ms: int = 0) -> None:
        self._random = random
        self._uptime = uptime_ms & 0xFFFFFFFF
        self._state = "c0c1"
        self.digest = False
        self.peer_version = b"\x00\x00\x00\x00"
        self.c2_valid = False
        self._s1 = b""
        self._s1_digest = b""

    @property
    def done(self) -> bool:
        return self._state == "done"

    def receive(self, buffer: ReceiveBuffer) -> bytes:
        """Consume what it can from `buffer`; returns bytes to send (maybe empty).

        Raises:
            HandshakeError: the client's bytes are not an RTMP handshake.
        """
        out = b""
        if self._state == "c0c1":
            if len(buffer) < 1 + HANDSHAKE_SIZE:
                if len(buffer) >= 1:
                    _check_version(buffer.byte_at(0), "client")
                return b""
            _check_version(buffer.take(1)[0], "client")
            c1 = buffer.take(HANDSHAKE_SIZE)
            self._state = "c2"
            out = bytes((RTMP_VERSION,)) + self._answer(c1)
        if self._state == "c2":
            if len(buffer) < HANDSHAKE_SIZE:
                return out
            c2 = buffer.take(HANDSHAKE_SIZE)
            if self.digest:
                self.c2_valid = response_is_signed(c2, self._s1_digest, PLAYER_KEY)
            else:
                self.c2_valid = c2 == self._s1 or c2[8:] == self._s1[8:]
            self._state = "done"
            self._s1 = self._s1_digest = b""  # not needed any more
        return out

    def _answer(self, c1: bytes) -> bytes:
        self.peer_version = c1[4:8]
        offset = find_digest(c1, PLAYER_KEY_SHORT) if self.peer_version != b"\x00" * 4 else None
        head = struct.pack(">I", self._uptime)
        if offset is None:
            self._s1 = head + b"\x00\x00\x00\x00" + self._random(HANDSHAKE_SIZE - 8)
            return self._s1 + c1
        self.digest = True
        scheme = 0 if offset < 772 else 1
        s1 = bytearray(head + SERVER_VERSION + self._random(HANDSHAKE_SIZE - 8))
        s1_offset = imprint_digest(s1, SERVER_KEY_SHORT, scheme)
        self._s1 = bytes(s1)
        self._s1_digest = self._s1[s1_offset : s1_offset + DIGEST_SIZE]
        s2 = signed_response(c1[offset : offset + DIGEST_SIZE], SERVER_KEY, self._random)
        return self._s1 + s2


class ClientHandshake:
    """The client side: sends a digest C0+C1, reads S0+S1+S2, answers C2.

    Args:
        digest: send a digest C1 (what Flash Player and ffmpeg do) or a plain one.
        random: source of random bytes.
    """

    def __init__(self, digest: bool = True, random: RandomSource = os.urandom) -> None:
        self._random = random
        self._send_digest = digest
        self._state = "start"
        self._c1 = b""
        self._c1_digest = b""
        self.digest = False
        self.peer_version = b"\x00\x00\x00\x00"

    @property
    def done(self) -> bool:
        return self._state == "done"

    def start(self) -> bytes:
        """C0+C1, to send first."""
        if self._state != "start":
            return b""
        self._state = "s0s1s2"
        if self._send_digest:
            c1 = bytearray(b"\x00\x00\x00\x00" + CLIENT_VERSION + self._random(HANDSHAKE_SIZE - 8))
            offset = imprint_digest(c1, PLAYER_KEY_SHORT, 0)
            self._c1 = bytes(c1)
            self._c1_digest = self._c1[offset : offset + DIGEST_SIZE]
        else:
            self._c1 = b"\x00" * 8 + self._random(HANDSHAKE_SIZE - 8)
        return bytes((RTMP_VERSION,)) + self._c1

    def receive(self, buffer: ReceiveBuffer) -> bytes:
        """Consume S0+S1+S2 from `buffer` when complete; returns C2 (or b"").

        Raises:
            HandshakeError: the server's answer is not a valid RTMP handshake.
        """
        if self._state != "s0s1s2":
            return b""
        if len(buffer) < 1 + 2 * HANDSHAKE_SIZE:
            if len(buffer) >= 1:
                _check_version(buffer.byte_at(0), "server")
            return b""
        _check_version(buffer.take(1)[0], "server")
        s1 = buffer.take(HANDSHAKE_SIZE)
        s2 = buffer.take(HANDSHAKE_SIZE)
        self.peer_version = s1[4:8]
        self._state = "done"
        offset = None
        if self._send_digest and self.peer_version != b"\x00" * 4:
            offset = find_digest(s1, SERVER_KEY_SHORT)
        if offset is None:
            return s1  # plain server: C2 echoes S1
        self.digest = True
        if not (response_is_signed(s2, self._c1_digest, SERVER_KEY) or s2 == self._c1):
            raise HandshakeError("server's S2 is not signed for our C1 digest")
        return signed_response(s1[offset : offset + DIGEST_SIZE], PLAYER_KEY, self._random)
