"""Enhanced RTMP v2 audio and video tag headers: parse, build, split by track (sans-IO).

An E-RTMP media message is an FLV tag body whose first byte says "extended header":
video sets its top bit (IsExVideoHeader), audio uses sound format 9 (ExHeader). After
that byte the message may carry, in this order:

- `ModEx` entries (packet type 7): a size, some data and a ModEx type; the one type
  defined, `TimestampOffsetNano`, adds 0-999,999 ns to this message's millisecond
  timestamp;
- `Multitrack` (video packet type 6, audio 5): a byte `AvMultitrackType << 4 | packet
  type`, then one track (`OneTrack`: FourCC, track id), or many tracks of one codec
  (`ManyTracks`: FourCC once, then track id + UI24 size per track), or many tracks each
  with its own codec (`ManyTracksManyCodecs`: FourCC + track id + size per track);
- otherwise a FourCC and the body of a single track (E-RTMP v1 form).

Every track in one message shares the message's frame type and packet type: a message
cannot mix a sequence start of one track with coded frames of another. So "is this a
key frame / a sequence header" has one answer per message, and it holds for each of its
tracks.

This module is wire framing, not codec knowledge: it finds where each track's body is
and what kind of packet it is, the same way for every codec, and never looks inside a
decoder configuration or a coded frame (that is `neurtmp.codec`). It lives in the
protocol layer because `neurtmp.protocol.media.classify` needs it for every message.

Everything here raises `DecodeError` for a malformed or unknown tag, never IndexError.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from neurtmp.errors import DecodeError

__all__ = [
    "AUDIO_FOURCCS",
    "MAX_TIMESTAMP_OFFSET_NANOS",
    "VIDEO_FOURCCS",
    "AudioChannelOrder",
    "AudioPacketType",
    "AvMultitrackType",
    "ExAudioTag",
    "ExVideoTag",
    "MultichannelConfig",
    "Track",
    "TrackForm",
    "VideoPacketType",
    "build_audio",
    "build_video",
    "is_enhanced_audio",
    "is_enhanced_video",
    "parse_audio",
    "parse_multichannel_config",
    "parse_video",
    "peek_audio_packet_type",
    "peek_video_packet_type",
    "split_audio",
    "split_video",
]


class VideoPacketType(enum.IntEnum):
    """The low nibble of an extended video header (and of a Multitrack byte)."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    CODED_FRAMES_X = 3
    METADATA = 4
    MPEG2TS_SEQUENCE_START = 5
    MULTITRACK = 6
    MOD_EX = 7


class AudioPacketType(enum.IntEnum):
    """The low nibble of an extended audio header (and of a Multitrack byte)."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    MULTICHANNEL_CONFIG = 4
    MULTITRACK = 5
    MOD_EX = 7


class AvMultitrackType(enum.IntEnum):
    """How the tracks of a Multitrack message are laid out."""

    ONE_TRACK = 0
    MANY_TRACKS = 1
    MANY_TRACKS_MANY_CODECS = 2


class AudioChannelOrder(enum.IntEnum):
    """How a MultichannelConfig names its channels."""

    UNSPECIFIED = 0
    NATIVE = 1  # a UI32 mask of AudioChannelMask bits
    CUSTOM = 2  # one AudioChannel byte per channel


class TrackForm(enum.Enum):
    """The shape `split_video` / `split_audio` give each track's message."""

    ONE_TRACK = "one-track"  # E-RTMP v2 Multitrack OneTrack: keeps the track id
    V1 = "v1"  # single-track E-RTMP v1 form: FourCC and body, no track id
    LEGACY = "legacy"  # AVC / AAC / MP3 in pre-2023 FLV form where one exists, else V1


#: Video FourCCs the spec defines.
VIDEO_FOURCCS = ("vp08", "vp09", "av01", "avc1", "hvc1", "vvc1")
#: Audio FourCCs the spec defines (AAC is "mp4a").
AUDIO_FOURCCS = ("ac-3", "ec-3", "Opus", ".mp3", "fLaC", "mp4a")

#: Video codecs whose CodedFrames carry an SI24 composition time offset.
_CTS_FOURCCS = frozenset({"avc1", "hvc1", "vvc1"})

_EX_VIDEO = 0x80
_AUDIO_EX_HEADER = 9
_MOD_EX = 7
_MOD_EX_TIMESTAMP_OFFSET_NANO = 0
#: Frame types a player can start on (key frame, generated key frame).
_KEY_FRAME_TYPES = (1, 4)
_FRAME_COMMAND = 5
#: The spec's bound: a nanosecond offset never reaches a whole millisecond.
MAX_TIMESTAMP_OFFSET_NANOS = 999_999
#: UI24 track sizes.
_MAX_TRACK_SIZE = 0xFFFFFF

_VIDEO_PACKET_TYPES = frozenset(int(t) for t in VideoPacketType)
_AUDIO_PACKET_TYPES = frozenset(int(t) for t in AudioPacketType)


@dataclass(frozen=True, slots=True)
class Track:
    """One track's part of an E-RTMP message.

    Attributes:
        track_id: 0 for a message that is not Multitrack (the default track).
        fourcc: the codec ("avc1", "hvc1", "mp4a", "Opus", ...).
        data: the track's body after its header: a decoder configuration, coded
            frames, a MultichannelConfig, metadata... (composition time excluded).
        composition_time: video CodedFrames of avc1/hvc1/vvc1 only (signed, ms).
    """

    track_id: int
    fourcc: str
    data: bytes
    composition_time: int = 0


@dataclass(frozen=True, slots=True)
class ExVideoTag:
    """A parsed extended video tag.

    Attributes:
        frame_type: 1 key, 2 inter, 3 disposable, 4 generated key, 5 command.
        packet_type: shared by every track (never Multitrack or ModEx).
        tracks: the tracks in wire order; empty for a video command.
        multitrack_type: the AvMultitrackType, or None for the single-track v1 form.
        timestamp_offset_nanos: from a ModEx TimestampOffsetNano, else 0.
        command: the VideoCommand byte of a command frame (0 StartSeek, 1 EndSeek).
    """

    frame_type: int
    packet_type: int
    tracks: tuple[Track, ...]
    multitrack_type: int | None = None
    timestamp_offset_nanos: int = 0
    command: int | None = None

    @property
    def is_sequence_header(self) -> bool:
        """A decoder configuration (SequenceStart or MPEG2TSSequenceStart), for every track."""
        return self.command is None and self.packet_type in (VideoPacketType.SEQUENCE_START,
                                                             VideoPacketType.MPEG2TS_SEQUENCE_START)

    @property
    def is_key_frame(self) -> bool:
        """Coded frames of key frame type, for every track: where a player can start."""
        return self.command is None and self.frame_type in _KEY_FRAME_TYPES and self.packet_type in (
            VideoPacketType.CODED_FRAMES, VideoPacketType.CODED_FRAMES_X)


@dataclass(frozen=True, slots=True)
class ExAudioTag:
    """A parsed extended audio tag.

    Attributes:
        packet_type: shared by every track (never Multitrack or ModEx).
        tracks: the tracks in wire order (at least one).
        multitrack_type: the AvMultitrackType, or None for the single-track v1 form.
        timestamp_offset_nanos: from a ModEx TimestampOffsetNano, else 0.
    """

    packet_type: int
    tracks: tuple[Track, ...]
    multitrack_type: int | None = None
    timestamp_offset_nanos: int = 0

    @property
    def is_sequence_header(self) -> bool:
        """A decoder configuration (SequenceStart), for every track."""
        return self.packet_type == AudioPacketType.SEQUENCE_START


@dataclass(frozen=True, slots=True)
class MultichannelConfig:
    """The body of an audio MultichannelConfig packet.

    Attributes:
        order: an AudioChannelOrder.
        channel_count: number of channels.
        mapping: CUSTOM order: one AudioChannel byte per channel; else empty.
        flags: NATIVE order: the AudioChannelMask bits; else 0.
    """

    order: int
    channel_count: int
    mapping: bytes = b""
    flags: int = 0

    def to_bytes(self) -> bytes:
        """The config as carried in the track body."""
        head = bytes((self.order, self.channel_count))
        if self.order == AudioChannelOrder.CUSTOM:
            if len(self.mapping) != self.channel_count:
                raise ValueError("a custom channel mapping needs one byte per channel")
            return head + bytes(self.mapping)
        if self.order == AudioChannelOrder.NATIVE:
            return head + self.flags.to_bytes(4, "big")
        return head


def parse_multichannel_config(data: bytes) -> MultichannelConfig:
    """Read a MultichannelConfig track body.

    Raises:
        DecodeError: too short for its channel order.
    """
    if len(data) < 2:
        raise DecodeError("truncated multichannel config")
    order, count = data[0], data[1]
    if order == AudioChannelOrder.CUSTOM:
        if len(data) < 2 + count:
            raise DecodeError("truncated custom channel mapping")
        return MultichannelConfig(order, count, bytes(data[2:2 + count]))
    if order == AudioChannelOrder.NATIVE:
        if len(data) < 6:
            raise DecodeError("truncated native channel flags")
        return MultichannelConfig(order, count, flags=int.from_bytes(data[2:6], "big"))
    return MultichannelConfig(order, count)


# -- peeks: never raise, never copy ------------------------------------------------------


def is_enhanced_video(payload: bytes) -> bool:
    """The video tag body has an extended (E-RTMP) header."""
    return bool(payload) and bool(payload[0] & _EX_VIDEO)


def is_enhanced_audio(payload: bytes) -> bool:
    """The audio tag body has an extended (E-RTMP) header (sound format 9)."""
    return bool(payload) and payload[0] >> 4 == _AUDIO_EX_HEADER


def _peek_packet_type(payload: bytes, multitrack: int) -> int | None:
    """The packet type after any ModEx entries and a Multitrack byte; None if cut short."""
    n = len(payload)
    packet_type = payload[0] & 0x0F
    pos = 1
    while packet_type == _MOD_EX:
        if pos >= n:
            return None
        size = payload[pos] + 1
        pos += 1
        if size == 256:
            if pos + 2 > n:
                return None
            size = int.from_bytes(payload[pos:pos + 2], "big") + 1
            pos += 2
        pos += size
        if pos >= n:
            return None
        packet_type = payload[pos] & 0x0F
        pos += 1
    if packet_type == multitrack:
        if pos >= n:
            return None
        return payload[pos] & 0x0F
    return packet_type


def peek_video_packet_type(payload: bytes) -> int | None:
    """The effective VideoPacketType of an extended video tag body (past ModEx and
    Multitrack), or None when it is not extended or too short to say."""
    if not is_enhanced_video(payload):
        return None
    return _peek_packet_type(payload, VideoPacketType.MULTITRACK)


def peek_audio_packet_type(payload: bytes) -> int | None:
    """The effective AudioPacketType of an extended audio tag body (past ModEx and
    Multitrack), or None when it is not extended or too short to say."""
    if not is_enhanced_audio(payload):
        return None
    return _peek_packet_type(payload, AudioPacketType.MULTITRACK)


# -- parsing ------------------------------------------------------------------------------


class _Reader:
    """Bounds-checked reads over one payload."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int, what: str) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise DecodeError(f"truncated E-RTMP tag: {what}")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def byte(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise DecodeError(f"truncated E-RTMP tag: {what}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def fourcc(self) -> str:
        return self.take(4, "FourCC").decode("latin-1")

    def rest(self) -> bytes:
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _read_mod_ex(reader: _Reader, packet_type: int) -> tuple[int, int]:
    """Walk ModEx entries: (packet type after them, timestamp offset in ns)."""
    nanos = 0
    while packet_type == _MOD_EX:
        size = reader.byte("ModEx size") + 1
        if size == 256:
            size = reader.uint(2, "ModEx size") + 1
        data = reader.take(size, "ModEx data")
        kind = reader.byte("ModEx type")
        packet_type = kind & 0x0F
        if kind >> 4 == _MOD_EX_TIMESTAMP_OFFSET_NANO:
            if size < 3:
                raise DecodeError("TimestampOffsetNano needs 3 bytes")
            nanos = int.from_bytes(data[:3], "big")
            if nanos > MAX_TIMESTAMP_OFFSET_NANOS:
                raise DecodeError(f"TimestampOffsetNano {nanos} is a millisecond or more")
        # other ModEx types are not defined yet: skipped, as the spec asks
    return packet_type, nanos


def _read_multitrack_byte(reader: _Reader, known: frozenset[int], multitrack: int) -> tuple[int, int]:
    value = reader.byte("multitrack type")
    multitrack_type, packet_type = value >> 4, value & 0x0F
    if multitrack_type > AvMultitrackType.MANY_TRACKS_MANY_CODECS:
        raise DecodeError(f"unknown multitrack type {multitrack_type}")
    if packet_type in (multitrack, _MOD_EX) or packet_type not in known:
        raise DecodeError(f"packet type {packet_type} inside a Multitrack message")
    return multitrack_type, packet_type


def _read_track(track_id: int, fourcc: str, data: bytes, has_cts: bool) -> Track:
    """One track's body; video CodedFrames of avc1/hvc1/vvc1 start with an SI24
    composition time."""
    if not has_cts or fourcc not in _CTS_FOURCCS:
        return Track(track_id, fourcc, data)
    if len(data) < 3:
        raise DecodeError("truncated composition time")
    cts = int.from_bytes(data[:3], "big")
    if cts & 0x800000:
        cts -= 0x1000000
    return Track(track_id, fourcc, data[3:], cts)


def _read_tracks(reader: _Reader, multitrack_type: int | None, fourcc: str, has_cts: bool) -> tuple[Track, ...]:
    if multitrack_type is None:
        return (_read_track(0, fourcc, reader.rest(), has_cts),)
    if multitrack_type == AvMultitrackType.ONE_TRACK:
        track_id = reader.byte("track id")
        return (_read_track(track_id, fourcc, reader.rest(), has_cts),)
    tracks = []
    while reader.left:
        if multitrack_type == AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            fourcc = reader.fourcc()
        track_id = reader.byte("track id")
        size = reader.uint(3, "track size")
        tracks.append(_read_track(track_id, fourcc, reader.take(size, "track body"), has_cts))
    if not tracks:
        raise DecodeError("a ManyTracks message with no track")
    return tuple(tracks)


def parse_video(payload: bytes) -> ExVideoTag:
    """Parse an extended video tag body (E-RTMP v1 or v2).

    Raises:
        DecodeError: not an extended header, truncated, an unknown packet type or
            multitrack type, or track sizes that overrun the message.
    """
    if not is_enhanced_video(payload):
        raise DecodeError("not an enhanced video tag")
    reader = _Reader(bytes(payload))
    b0 = reader.byte("header")
    frame_type = (b0 >> 4) & 0x07
    packet_type, nanos = _read_mod_ex(reader, b0 & 0x0F)
    if packet_type not in _VIDEO_PACKET_TYPES:
        raise DecodeError(f"unknown video packet type {packet_type}")
    if frame_type == _FRAME_COMMAND and packet_type != VideoPacketType.METADATA:
        command = reader.byte("video command")
        return ExVideoTag(frame_type, packet_type, (), None, nanos, command)
    multitrack_type: int | None = None
    fourcc = ""
    if packet_type == VideoPacketType.MULTITRACK:
        multitrack_type, packet_type = _read_multitrack_byte(reader, _VIDEO_PACKET_TYPES, VideoPacketType.MULTITRACK)
        if multitrack_type != AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            fourcc = reader.fourcc()
    else:
        fourcc = reader.fourcc()
    tracks = _read_tracks(reader, multitrack_type, fourcc, packet_type == VideoPacketType.CODED_FRAMES)
    return ExVideoTag(frame_type, packet_type, tracks, multitrack_type, nanos)


def parse_audio(payload: bytes) -> ExAudioTag:
    """Parse an extended audio tag body (sound format 9, E-RTMP v2).

    Raises:
        DecodeError: not an extended header, truncated, an unknown packet type or
            multitrack type, or track sizes that overrun the message.
    """
    if not is_enhanced_audio(payload):
        raise DecodeError("not an enhanced audio tag")
    reader = _Reader(bytes(payload))
    b0 = reader.byte("header")
    packet_type, nanos = _read_mod_ex(reader, b0 & 0x0F)
    if packet_type not in _AUDIO_PACKET_TYPES:
        raise DecodeError(f"unknown audio packet type {packet_type}")
    multitrack_type: int | None = None
    fourcc = ""
    if packet_type == AudioPacketType.MULTITRACK:
        multitrack_type, packet_type = _read_multitrack_byte(reader, _AUDIO_PACKET_TYPES, AudioPacketType.MULTITRACK)
        if multitrack_type != AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            fourcc = reader.fourcc()
    else:
        fourcc = reader.fourcc()
    tracks = _read_tracks(reader, multitrack_type, fourcc, False)
    return ExAudioTag(packet_type, tracks, multitrack_type, nanos)


# -- building -----------------------------------------------------------------------------


def _fourcc_bytes(fourcc: str) -> bytes:
    raw = fourcc.encode("latin-1")
    if len(raw) != 4:
        raise ValueError(f"FourCC must be 4 characters, not {fourcc!r}")
    return raw


def _mod_ex(nanos: int) -> bytes:
    """A TimestampOffsetNano ModEx entry (before the byte holding the next packet type)."""
    if not 0 <= nanos <= MAX_TIMESTAMP_OFFSET_NANOS:
        raise ValueError(f"timestamp offset {nanos} ns is outside 0..{MAX_TIMESTAMP_OFFSET_NANOS}")
    return bytes((2,)) + nanos.to_bytes(3, "big")


def _head(first_high: int, packet_type: int, nanos: int) -> bytes:
    """The header byte(s) before the Multitrack byte / FourCC, ModEx included."""
    if not nanos:
        return bytes((first_high | packet_type,))
    return bytes((first_high | _MOD_EX,)) + _mod_ex(nanos) + bytes((_MOD_EX_TIMESTAMP_OFFSET_NANO << 4 | packet_type,))


def _track_body(track: Track, packet_type: int, video: bool) -> bytes:
    if video and packet_type == VideoPacketType.CODED_FRAMES and track.fourcc in _CTS_FOURCCS:
        return (track.composition_time & 0xFFFFFF).to_bytes(3, "big") + track.data
    return track.data


def _build(first_high: int, packet_type: int, tracks: tuple[Track, ...], multitrack_type: int | None,
           nanos: int, multitrack: int, video: bool) -> bytes:
    if not tracks:
        raise ValueError("a media tag needs at least one track")
    if multitrack_type is None:
        if len(tracks) != 1:
            raise ValueError("more than one track needs a multitrack type")
        (track,) = tracks
        return (_head(first_high, packet_type, nanos) + _fourcc_bytes(track.fourcc)
                + _track_body(track, packet_type, video))
    multitrack_type = AvMultitrackType(multitrack_type)
    parts = [_head(first_high, multitrack, nanos), bytes((multitrack_type << 4 | packet_type,))]
    if multitrack_type == AvMultitrackType.ONE_TRACK:
        if len(tracks) != 1:
            raise ValueError("OneTrack carries exactly one track")
        (track,) = tracks
        parts += [_fourcc_bytes(track.fourcc), bytes((track.track_id,)), _track_body(track, packet_type, video)]
        return b"".join(parts)
    if multitrack_type == AvMultitrackType.MANY_TRACKS:
        if len({t.fourcc for t in tracks}) != 1:
            raise ValueError("ManyTracks tracks share one codec: use ManyTracksManyCodecs")
        parts.append(_fourcc_bytes(tracks[0].fourcc))
    for track in tracks:
        body = _track_body(track, packet_type, video)
        if len(body) > _MAX_TRACK_SIZE:
            raise ValueError("a track body is larger than 16 MiB")
        if multitrack_type == AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            parts.append(_fourcc_bytes(track.fourcc))
        parts += [bytes((track.track_id,)), len(body).to_bytes(3, "big"), body]
    return b"".join(parts)


def build_video(tag: ExVideoTag) -> bytes:
    """The extended video tag body of `tag` (what `parse_video` reads back).

    Raises:
        ValueError: a tag the format cannot carry (no track, several tracks without a
            multitrack type, mixed codecs in ManyTracks, a bad FourCC or offset).
    """
    first_high = _EX_VIDEO | (tag.frame_type & 0x07) << 4
    if tag.command is not None:
        return _head(first_high, tag.packet_type, tag.timestamp_offset_nanos) + bytes((tag.command,))
    return _build(first_high, tag.packet_type, tag.tracks, tag.multitrack_type, tag.timestamp_offset_nanos,
                  VideoPacketType.MULTITRACK, True)


def build_audio(tag: ExAudioTag) -> bytes:
    """The extended audio tag body of `tag` (what `parse_audio` reads back).

    Raises:
        ValueError: as for `build_video`.
    """
    return _build(_AUDIO_EX_HEADER << 4, tag.packet_type, tag.tracks, tag.multitrack_type,
                  tag.timestamp_offset_nanos, AudioPacketType.MULTITRACK, False)


# -- splitting per track ------------------------------------------------------------------

_LEGACY_AVC = 7
_LEGACY_AVC_PACKET: dict[int, int] = {VideoPacketType.SEQUENCE_START: 0, VideoPacketType.CODED_FRAMES: 1,
                      VideoPacketType.CODED_FRAMES_X: 1, VideoPacketType.SEQUENCE_END: 2}
#: AAC in FLV: sound format 10, 44 kHz, 16-bit, stereo (the flags FLV requires for AAC).
_LEGACY_AAC = 0xAF
#: MP3 in FLV: sound format 2 with the same rate/size/type flags.
_LEGACY_MP3 = 0x2F
_LEGACY_AAC_PACKET: dict[int, int] = {AudioPacketType.SEQUENCE_START: 0, AudioPacketType.CODED_FRAMES: 1}


def _legacy_video(tag: ExVideoTag, track: Track) -> bytes | None:
    avc_type = _LEGACY_AVC_PACKET.get(tag.packet_type)
    if track.fourcc != "avc1" or avc_type is None:
        return None
    cts = track.composition_time if tag.packet_type == VideoPacketType.CODED_FRAMES else 0
    return bytes((tag.frame_type << 4 | _LEGACY_AVC, avc_type)) + (cts & 0xFFFFFF).to_bytes(3, "big") + track.data


def _legacy_audio(tag: ExAudioTag, track: Track) -> bytes | None:
    if track.fourcc == "mp4a" and tag.packet_type in _LEGACY_AAC_PACKET:
        return bytes((_LEGACY_AAC, _LEGACY_AAC_PACKET[tag.packet_type])) + track.data
    if track.fourcc == ".mp3" and tag.packet_type == AudioPacketType.CODED_FRAMES:
        return bytes((_LEGACY_MP3,)) + track.data
    return None


def split_video(payload: bytes, form: TrackForm = TrackForm.ONE_TRACK) -> list[tuple[int, bytes]]:
    """Each track of a video message as a message of its own: [(track id, payload)].

    `form` says the shape: `ONE_TRACK` keeps the track id (for multitrack players),
    `V1` drops it (E-RTMP v1 players), `LEGACY` writes avc1 as pre-2023 AVC (FLV codec
    7) and anything without a legacy form (other codecs, metadata) as `V1`. ModEx
    timestamp offsets are kept, except in the legacy AVC form that has no place for them.
    A message that is not extended, or a video command (no tracks), comes back whole as
    track 0.

    Raises:
        DecodeError: a malformed extended tag.
    """
    if not is_enhanced_video(payload):
        return [(0, payload)]
    tag = parse_video(payload)
    if tag.command is not None:
        return [(0, payload)]
    if len(tag.tracks) == 1 and _already(tag.multitrack_type, form):
        return [(tag.tracks[0].track_id, payload)]
    out = []
    for track in tag.tracks:
        one = ExVideoTag(tag.frame_type, tag.packet_type, (track,),
                         AvMultitrackType.ONE_TRACK if form is TrackForm.ONE_TRACK else None,
                         tag.timestamp_offset_nanos)
        legacy = _legacy_video(tag, track) if form is TrackForm.LEGACY else None
        out.append((track.track_id, legacy if legacy is not None else build_video(one)))
    return out


def split_audio(payload: bytes, form: TrackForm = TrackForm.ONE_TRACK) -> list[tuple[int, bytes]]:
    """Each track of an audio message as a message of its own: [(track id, payload)].

    As `split_video`; `LEGACY` writes "mp4a" sequence starts and coded frames as AAC
    (sound format 10) and ".mp3" coded frames as MP3 (sound format 2). A message that
    is not extended comes back whole as track 0.

    Raises:
        DecodeError: a malformed extended tag.
    """
    if not is_enhanced_audio(payload):
        return [(0, payload)]
    tag = parse_audio(payload)
    if len(tag.tracks) == 1 and _already(tag.multitrack_type, form):
        return [(tag.tracks[0].track_id, payload)]
    out = []
    for track in tag.tracks:
        one = ExAudioTag(tag.packet_type, (track,),
                         AvMultitrackType.ONE_TRACK if form is TrackForm.ONE_TRACK else None,
                         tag.timestamp_offset_nanos)
        legacy = _legacy_audio(tag, track) if form is TrackForm.LEGACY else None
        out.append((track.track_id, legacy if legacy is not None else build_audio(one)))
    return out


def _already(multitrack_type: int | None, form: TrackForm) -> bool:
    """A one-track message already in `form` (so it is passed on as it came)."""
    if form is TrackForm.ONE_TRACK:
        return multitrack_type == AvMultitrackType.ONE_TRACK
    if form is TrackForm.V1:
        return multitrack_type is None
    return False
