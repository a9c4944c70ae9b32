"""Protocol limits and defaults, each with the reason it has the value it has.

Where nginx-rtmp or SRS have an equivalent setting, its value is given for comparison.
"""

from __future__ import annotations

#: RTMP's initial chunk size in both directions (spec 5.4.1); changed by Set Chunk Size.
INITIAL_CHUNK_SIZE = 128

#: Largest chunk size the spec allows (31 bits; the top bit must be zero).
MAX_CHUNK_SIZE = 0x7FFFFFFF

#: Chunk size we announce for what we send: large enough that a typical video frame
#: needs few chunk headers. nginx-rtmp `chunk_size` defaults to 4096, SRS to 60000.
DEFAULT_OUT_CHUNK_SIZE = 4096

#: Largest message a peer may send us. The wire format allows 16 MiB - 1; a keyframe of
#: a 4K stream at a high bitrate fits easily in 8 MiB. nginx-rtmp `max_message` is 1 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 8 * 1024 * 1024

#: Chunk streams a peer may keep open at once. Real clients use fewer than ten;
#: nginx-rtmp `max_streams` is 32.
DEFAULT_MAX_CHUNK_STREAMS = 64

#: NetStreams a client may hold open on one connection (players and publishers use one
#: or two). Bounds what a client can make us keep per connection.
DEFAULT_MAX_STREAMS = 256

#: Bytes of partly received messages held across all chunk streams of one connection.
DEFAULT_MAX_PENDING_BYTES = 2 * DEFAULT_MAX_MESSAGE_SIZE

#: Window Acknowledgement Size we ask the peer to use (bytes between acknowledgements).
#: nginx-rtmp `ack_window` is 5000000; SRS uses 2500000.
DEFAULT_WINDOW_ACK_SIZE = 2_500_000

#: Peer bandwidth we announce with Set Peer Bandwidth.
DEFAULT_PEER_BANDWIDTH = 2_500_000

#: Deepest nesting of AMF containers we decode; real metadata nests two or three levels.
MAX_AMF_DEPTH = 64

#: Size of C1/C2/S1/S2 in the handshake (spec 5.2).
HANDSHAKE_SIZE = 1536

#: The RTMP version byte in C0/S0.
RTMP_VERSION = 3

#: The RTMP port, where a URL or listen address names none.
DEFAULT_PORT = 1935
