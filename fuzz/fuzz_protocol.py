"""atheris harnesses for the protocol core; see fuzz/README.md.

    python fuzz/fuzz_protocol.py [LAYER] [libFuzzer options]

LAYER is one of: session (default), handshake, chunk, amf0, amf3, command.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from neurtmp.errors import RemoteProtocolError
    from neurtmp.protocol import ClientProtocol, ServerProtocol, amf0, amf3
    from neurtmp.protocol._buffer import ReceiveBuffer
    from neurtmp.protocol.chunk import ChunkDecoder
    from neurtmp.protocol.commands import parse_command, parse_data
    from neurtmp.protocol.handshake import ClientHandshake, ServerHandshake
    from neurtmp.protocol.message import Message


def _handshake_bytes() -> bytes:
    server = ServerProtocol()
    client = ClientProtocol(handshake=ClientHandshake(digest=False))
    hello = client.data_to_send()
    server.receive_data(hello)
    client.receive_data(server.data_to_send())
    return hello + client.data_to_send()


HANDSHAKE = _handshake_bytes()


def session(data: bytes) -> None:
    server = ServerProtocol(max_message_size=1 << 16)
    split = data[0] if data else 0
    body = data[1:]
    server.receive_data(HANDSHAKE)
    for start in range(0, len(body), split + 1):
        server.receive_data(body[start : start + split + 1])
        server.data_to_send()


def handshake(data: bytes) -> None:
    buffer = ReceiveBuffer()
    buffer.feed(data)
    side = ServerHandshake() if len(data) % 2 else ClientHandshake()
    if isinstance(side, ClientHandshake):
        side.start()
    side.receive(buffer)


def chunk(data: bytes) -> None:
    decoder = ChunkDecoder(max_message_size=1 << 16)
    decoder.feed(data)
    while decoder.next_message() is not None:
        pass


def command(data: bytes) -> None:
    parse_command(Message(20, 0, 0, data))
    parse_data(Message(18, 0, 1, data))


LAYERS = {"session": session, "handshake": handshake, "chunk": chunk, "amf0": amf0.decode_all,
          "amf3": amf3.decode, "command": command}


def main() -> None:
    layer = "session"
    if len(sys.argv) > 1 and sys.argv[1] in LAYERS:
        layer = sys.argv.pop(1)
    target = LAYERS[layer]

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except RemoteProtocolError:
            pass

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
