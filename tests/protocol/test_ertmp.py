"""Enhanced RTMP v2 tags: every packet form round-trips, real ffmpeg 9 payloads parse,
classify is right for every multitrack form, and any bytes parse or raise DecodeError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurtmp.errors import DecodeError
from neurtmp.protocol import ertmp
from neurtmp.protocol.ertmp import (
    AudioChannelOrder,
    AudioPacketType,
    AvMultitrackType,
    ExAudioTag,
    ExVideoTag,
    MultichannelConfig,
    Track,
    TrackForm,
    VideoPacketType,
)
from neurtmp.protocol.media import AUDIO, CRITICAL, VIDEO_INTER, VIDEO_KEY, classify
from tests.protocol import ertmp_ffmpeg as ff

KEY, INTER = 1, 2
ONE, MANY, MANY_CODECS = AvMultitrackType.ONE_TRACK, AvMultitrackType.MANY_TRACKS, \
    AvMultitrackType.MANY_TRACKS_MANY_CODECS


# -- round trips ------------------------------------------------------------------------

_VIDEO_TAGS = [
    ExVideoTag(KEY, VideoPacketType.SEQUENCE_START, (Track(0, "hvc1", b"\x01config"),)),
    ExVideoTag(KEY, VideoPacketType.CODED_FRAMES, (Track(0, "avc1", b"nalus", -40),)),
    ExVideoTag(INTER, VideoPacketType.CODED_FRAMES, (Track(0, "av01", b"obus"),)),
    ExVideoTag(INTER, VideoPacketType.CODED_FRAMES_X, (Track(0, "hvc1", b"nalus"),)),
    ExVideoTag(KEY, VideoPacketType.SEQUENCE_END, (Track(0, "vp09", b""),)),
    ExVideoTag(5, VideoPacketType.METADATA, (Track(0, "hvc1", b"\x02\x00\x09colorInfo"),)),
    ExVideoTag(KEY, VideoPacketType.MPEG2TS_SEQUENCE_START, (Track(0, "av01", b"desc"),)),
    ExVideoTag(5, VideoPacketType.CODED_FRAMES, (), command=1),
    ExVideoTag(KEY, VideoPacketType.SEQUENCE_START, (Track(3, "avc1", b"cfg"),), ONE),
    ExVideoTag(KEY, VideoPacketType.CODED_FRAMES, (Track(1, "hvc1", b"n1", 80),), ONE, 999_999),
    ExVideoTag(KEY, VideoPacketType.SEQUENCE_START, (Track(0, "avc1", b"c0"), Track(1, "avc1", b"c11")), MANY),
    ExVideoTag(INTER, VideoPacketType.CODED_FRAMES,
               (Track(0, "avc1", b"f0", 40), Track(2, "avc1", b"", -1)), MANY, 1234),
    ExVideoTag(KEY, VideoPacketType.CODED_FRAMES,
               (Track(0, "avc1", b"a", 33), Track(1, "av01", b"bb"), Track(2, "hvc1", b"ccc", 7)), MANY_CODECS),
    ExVideoTag(5, VideoPacketType.CODED_FRAMES, (), command=0, timestamp_offset_nanos=5),
]


@pytest.mark.parametrize("tag", _VIDEO_TAGS, ids=lambda t: f"{VideoPacketType(t.packet_type).name}-{t.multitrack_type}")
def test_video_tags_round_trip(tag: ExVideoTag) -> None:
    assert ertmp.parse_video(ertmp.build_video(tag)) == tag


_AUDIO_TAGS = [
    ExAudioTag(AudioPacketType.SEQUENCE_START, (Track(0, "mp4a", b"\x12\x10"),)),
    ExAudioTag(AudioPacketType.CODED_FRAMES, (Track(0, "Opus", b"opus"),)),
    ExAudioTag(AudioPacketType.CODED_FRAMES, (Track(0, ".mp3", b"\xff\xfb"),)),
    ExAudioTag(AudioPacketType.CODED_FRAMES, (Track(0, "ac-3", b"\x0b\x77"),)),
    ExAudioTag(AudioPacketType.CODED_FRAMES, (Track(0, "ec-3", b"\x0b\x77"),)),
    ExAudioTag(AudioPacketType.SEQUENCE_START, (Track(0, "fLaC", b"fLaC\x00"),)),
    ExAudioTag(AudioPacketType.SEQUENCE_END, (Track(0, "Opus", b""),)),
    ExAudioTag(AudioPacketType.MULTICHANNEL_CONFIG,
               (Track(0, "Opus", MultichannelConfig(AudioChannelOrder.NATIVE, 2, flags=3).to_bytes()),)),
    ExAudioTag(AudioPacketType.SEQUENCE_START, (Track(4, "Opus", b"OpusHead"),), ONE),
    ExAudioTag(AudioPacketType.CODED_FRAMES, (Track(0, "mp4a", b"x"), Track(1, "mp4a", b"yy")), MANY, 20_833),
    ExAudioTag(AudioPacketType.CODED_FRAMES, (Track(0, "mp4a", b"x"), Track(1, "Opus", b"yy")), MANY_CODECS),
]


@pytest.mark.parametrize("tag", _AUDIO_TAGS, ids=lambda t: f"{AudioPacketType(t.packet_type).name}-{t.multitrack_type}")
def test_audio_tags_round_trip(tag: ExAudioTag) -> None:
    assert ertmp.parse_audio(ertmp.build_audio(tag)) == tag


@pytest.mark.parametrize("config", [
    MultichannelConfig(AudioChannelOrder.UNSPECIFIED, 6),
    MultichannelConfig(AudioChannelOrder.NATIVE, 6, flags=0x3F),
    MultichannelConfig(AudioChannelOrder.CUSTOM, 3, bytes((0, 1, 0xFE))),
])
def test_multichannel_configs_round_trip(config: MultichannelConfig) -> None:
    assert ertmp.parse_multichannel_config(config.to_bytes()) == config


def test_the_wire_layout_is_the_spec_s() -> None:
    """Bytes written by hand from the spec's tables: ManyTracks, ModEx, ManyTracksManyCodecs."""
    many = bytes.fromhex("96" "11" "61766331" "00" "000005" "000000" "4141" "01" "000003" "000000")
    tag = ertmp.parse_video(many)
    assert tag.multitrack_type == MANY and tag.packet_type == VideoPacketType.CODED_FRAMES
    assert [(t.track_id, t.fourcc, t.data) for t in tag.tracks] == [(0, "avc1", b"AA"), (1, "avc1", b"")]
    modex = bytes.fromhex("97" "02" "0f423f" "06" "21" "61763031" "07" "000001" "58" "6876633101" "000004" "00000059")
    tag = ertmp.parse_video(modex)
    assert tag.timestamp_offset_nanos == 999_999 and tag.multitrack_type == MANY_CODECS
    assert [(t.track_id, t.fourcc, t.data, t.composition_time) for t in tag.tracks] == [
        (7, "av01", b"X", 0), (1, "hvc1", b"Y", 0)]
    assert ertmp.build_video(tag) == modex
    audio = bytes.fromhex("97" "02" "000064" "05" "11" "6d703461" "00" "000001" "aa" "01" "000000")
    tag_a = ertmp.parse_audio(audio)
    assert tag_a.timestamp_offset_nanos == 100 and tag_a.packet_type == AudioPacketType.CODED_FRAMES
    assert [(t.track_id, t.data) for t in tag_a.tracks] == [(0, b"\xaa"), (1, b"")]


def test_a_16_bit_mod_ex_size_and_unknown_mod_ex_types_are_read_past() -> None:
    data = bytes(300)
    payload = b"\x97\xff" + (len(data) - 1).to_bytes(2, "big") + data + b"\x51" + b"avc1" + b"\x00\x00\x00NAL"
    tag = ertmp.parse_video(payload)
    assert tag.timestamp_offset_nanos == 0  # ModEx type 5 is not defined: skipped
    assert tag.tracks == (Track(0, "avc1", b"NAL"),)
    assert classify(9, payload) == (False, True, VIDEO_KEY)


@pytest.mark.parametrize("payload", [
    b"", b"\x17\x00", b"\x80", b"\x90avc", b"\x96", b"\x96\x30avc1\x00", b"\x96\x06avc1\x00", b"\x96\x10avc1",
    b"\x96\x10avc1\x00\x00\x00\x05ab", b"\x98avc1", b"\x91avc1\x00", b"\x97\x02\x00", b"\x97\x01\x00\x00\x00avc1",
    b"\x96\x20", b"\xd0", b"\x97\x02\x0f\x42\x40\x01avc1",
])
def test_malformed_video_raises_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        ertmp.parse_video(payload)


@pytest.mark.parametrize("payload", [b"", b"\xaf\x00", b"\x93mp4a", b"\x95\x10mp4a\x00\x00", b"\x96mp4a"])
def test_malformed_audio_raises_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        ertmp.parse_audio(payload)


def test_builders_refuse_what_the_format_cannot_carry() -> None:
    with pytest.raises(ValueError):
        ertmp.build_video(ExVideoTag(KEY, 1, (Track(0, "avc1", b""), Track(1, "hvc1", b"")), MANY))
    with pytest.raises(ValueError):
        ertmp.build_video(ExVideoTag(KEY, 1, (Track(0, "avc1", b""), Track(1, "avc1", b""))))
    with pytest.raises(ValueError):
        ertmp.build_audio(ExAudioTag(1, (Track(0, "mp4a", b""),), timestamp_offset_nanos=1_000_000))
    with pytest.raises(ValueError):
        ertmp.build_audio(ExAudioTag(1, (Track(0, "aac", b""),)))


# -- real ffmpeg 9 payloads ---------------------------------------------------------------


def test_ffmpeg9_two_h264_tracks_second_is_onetrack_avc1_track_1() -> None:
    start = ertmp.parse_video(ff.TWO_H264_TRACK1_SEQUENCE_START)
    assert start.multitrack_type == ONE and start.is_sequence_header
    assert [(t.track_id, t.fourcc) for t in start.tracks] == [(1, "avc1")]
    assert start.tracks[0].data == ff.TWO_H264_LEGACY_SEQUENCE_START[5:]  # the same AVCDecoderConfigurationRecord
    key = ertmp.parse_video(ff.TWO_H264_TRACK1_KEY_FRAME)
    assert key.packet_type == VideoPacketType.CODED_FRAMES_X and key.is_key_frame
    assert key.tracks[0].track_id == 1 and key.tracks[0].data[:4] == b"\x00\x00\x02\x5e"  # an AVCC length
    inter = ertmp.parse_video(ff.TWO_H264_TRACK1_INTER_FRAME)
    assert inter.frame_type == INTER and not inter.is_key_frame and inter.tracks[0].track_id == 1
    assert classify(9, ff.TWO_H264_TRACK1_SEQUENCE_START) == (True, False, CRITICAL)
    assert classify(9, ff.TWO_H264_TRACK1_KEY_FRAME) == (False, True, VIDEO_KEY)
    assert classify(9, ff.TWO_H264_TRACK1_INTER_FRAME) == (False, False, VIDEO_INTER)
    assert classify(8, ff.TWO_H264_LEGACY_AAC_SEQUENCE_START) == (True, False, CRITICAL)


def test_ffmpeg9_track_1_unwraps_to_the_legacy_form_of_track_0() -> None:
    """The legacy form of ffmpeg's multitrack avc1 is byte for byte its legacy AVC."""
    assert ertmp.split_video(ff.TWO_H264_TRACK1_SEQUENCE_START, TrackForm.LEGACY) == [
        (1, ff.TWO_H264_LEGACY_SEQUENCE_START)]
    ((track_id, legacy),) = ertmp.split_video(ff.TWO_H264_TRACK1_KEY_FRAME, TrackForm.LEGACY)
    assert track_id == 1 and legacy == ff.TWO_H264_LEGACY_KEY_FRAME[:len(legacy)]


def test_ffmpeg9_opus_second_audio_track_is_onetrack_track_1() -> None:
    start = ertmp.parse_audio(ff.AAC_OPUS_TRACK1_SEQUENCE_START)
    assert start.multitrack_type == ONE and start.is_sequence_header
    assert (start.tracks[0].track_id, start.tracks[0].fourcc) == (1, "Opus")
    assert start.tracks[0].data.startswith(b"OpusHead")
    config = ertmp.parse_audio(ff.AAC_OPUS_TRACK1_MULTICHANNEL_CONFIG)
    assert config.packet_type == AudioPacketType.MULTICHANNEL_CONFIG and config.tracks[0].track_id == 1
    assert ertmp.parse_multichannel_config(config.tracks[0].data) == MultichannelConfig(
        AudioChannelOrder.NATIVE, 1, flags=0x04)  # mono: FrontCenter
    frames = ertmp.parse_audio(ff.AAC_OPUS_TRACK1_CODED_FRAMES)
    assert frames.packet_type == AudioPacketType.CODED_FRAMES and frames.tracks[0].track_id == 1
    assert classify(8, ff.AAC_OPUS_TRACK1_SEQUENCE_START) == (True, False, CRITICAL)
    assert classify(8, ff.AAC_OPUS_TRACK1_MULTICHANNEL_CONFIG) == (False, False, CRITICAL)
    assert classify(8, ff.AAC_OPUS_TRACK1_CODED_FRAMES) == (False, False, AUDIO)


def test_ffmpeg9_hevc_track_carries_a_composition_time_and_single_track_metadata() -> None:
    start = ertmp.parse_video(ff.H264_HEVC_TRACK1_SEQUENCE_START)
    assert (start.tracks[0].track_id, start.tracks[0].fourcc, start.is_sequence_header) == (1, "hvc1", True)
    key = ertmp.parse_video(ff.H264_HEVC_TRACK1_KEY_FRAME)
    assert key.packet_type == VideoPacketType.CODED_FRAMES and key.tracks[0].composition_time == 200
    assert key.is_key_frame
    inter = ertmp.parse_video(ff.H264_HEVC_TRACK1_INTER_FRAME)
    assert inter.tracks[0].composition_time == 200 and not inter.is_key_frame
    meta = ertmp.parse_video(ff.H264_HEVC_METADATA)
    assert meta.frame_type == 5 and meta.packet_type == VideoPacketType.METADATA and meta.command is None
    assert meta.multitrack_type is None and meta.tracks[0].data[3:12] == b"colorInfo"
    assert classify(9, ff.H264_HEVC_METADATA) == (False, False, CRITICAL)
    assert classify(9, ff.H264_HEVC_TRACK1_KEY_FRAME) == (False, True, VIDEO_KEY)


def test_ffmpeg9_single_track_opus() -> None:
    assert ertmp.parse_audio(ff.OPUS_SEQUENCE_START).tracks == (
        Track(0, "Opus", ff.OPUS_SEQUENCE_START[5:]),)
    assert ertmp.parse_audio(ff.OPUS_MULTICHANNEL_CONFIG).packet_type == AudioPacketType.MULTICHANNEL_CONFIG
    assert classify(8, ff.OPUS_SEQUENCE_START) == (True, False, CRITICAL)
    assert classify(8, ff.OPUS_CODED_FRAMES) == (False, False, AUDIO)


#: (is audio, payload) of every captured payload; audio ones are named after their codec.
_FFMPEG_PAYLOADS = [(any(codec in name for codec in ("AAC", "OPUS")), value) for name, value in vars(ff).items()
                    if name.isupper() and isinstance(value, bytes)]


@pytest.mark.parametrize(("audio", "payload"), _FFMPEG_PAYLOADS)
def test_ffmpeg9_enhanced_payloads_rebuild_byte_for_byte(audio: bool, payload: bytes) -> None:
    if audio and ertmp.is_enhanced_audio(payload):
        assert ertmp.build_audio(ertmp.parse_audio(payload)) == payload
    elif not audio and ertmp.is_enhanced_video(payload):
        assert ertmp.build_video(ertmp.parse_video(payload)) == payload


# -- classify for every multitrack form ---------------------------------------------------


@pytest.mark.parametrize("multitrack_type", [None, ONE, MANY, MANY_CODECS])
@pytest.mark.parametrize("nanos", [0, 500])
def test_classify_every_video_form(multitrack_type: int | None, nanos: int) -> None:
    count = 1 if multitrack_type in (None, ONE) else 2
    fourccs = ["avc1", "hvc1"] if multitrack_type == MANY_CODECS else ["avc1", "avc1"]

    def tag(frame_type: int, packet_type: int) -> bytes:
        tracks = tuple(Track(i, fourccs[i], b"x") for i in range(count))
        return ertmp.build_video(ExVideoTag(frame_type, packet_type, tracks, multitrack_type, nanos))

    assert classify(9, tag(KEY, VideoPacketType.SEQUENCE_START)) == (True, False, CRITICAL)
    assert classify(9, tag(KEY, VideoPacketType.CODED_FRAMES)) == (False, True, VIDEO_KEY)
    assert classify(9, tag(KEY, VideoPacketType.CODED_FRAMES_X)) == (False, True, VIDEO_KEY)
    assert classify(9, tag(INTER, VideoPacketType.CODED_FRAMES)) == (False, False, VIDEO_INTER)
    assert classify(9, tag(KEY, VideoPacketType.SEQUENCE_END)) == (False, False, CRITICAL)
    assert classify(9, tag(5, VideoPacketType.METADATA)) == (False, False, CRITICAL)


@pytest.mark.parametrize("multitrack_type", [None, ONE, MANY, MANY_CODECS])
@pytest.mark.parametrize("nanos", [0, 500])
def test_classify_every_audio_form(multitrack_type: int | None, nanos: int) -> None:
    count = 1 if multitrack_type in (None, ONE) else 2

    def tag(packet_type: int) -> bytes:
        tracks = tuple(Track(i, "Opus", b"\x00\x01") for i in range(count))
        return ertmp.build_audio(ExAudioTag(packet_type, tracks, multitrack_type, nanos))

    assert classify(8, tag(AudioPacketType.SEQUENCE_START)) == (True, False, CRITICAL)
    assert classify(8, tag(AudioPacketType.CODED_FRAMES)) == (False, False, AUDIO)
    assert classify(8, tag(AudioPacketType.MULTICHANNEL_CONFIG)) == (False, False, CRITICAL)
    assert classify(8, tag(AudioPacketType.SEQUENCE_END)) == (False, False, CRITICAL)


def test_a_video_command_is_critical_and_has_no_tracks() -> None:
    payload = ertmp.build_video(ExVideoTag(5, 0, (), command=0))
    assert payload == b"\xd0\x00"
    assert classify(9, payload) == (False, False, CRITICAL)
    assert ertmp.split_video(payload) == [(0, payload)]


# -- splitting per track ------------------------------------------------------------------


def test_split_many_tracks_into_each_form() -> None:
    tag = ExVideoTag(KEY, VideoPacketType.CODED_FRAMES,
                     (Track(0, "avc1", b"A", 40), Track(1, "hvc1", b"B", 0)), MANY_CODECS, 250)
    payload = ertmp.build_video(tag)
    one = ertmp.split_video(payload)
    assert [tid for tid, _ in one] == [0, 1]
    assert ertmp.parse_video(one[1][1]) == ExVideoTag(KEY, 1, (Track(1, "hvc1", b"B"),), ONE, 250)
    v1 = ertmp.split_video(payload, TrackForm.V1)
    assert ertmp.parse_video(v1[0][1]) == ExVideoTag(KEY, 1, (Track(0, "avc1", b"A", 40),), None, 250)
    legacy = ertmp.split_video(payload, TrackForm.LEGACY)
    assert legacy[0] == (0, b"\x17\x01\x00\x00\x28A")  # AVC NALU, composition time 40
    assert ertmp.parse_video(legacy[1][1]).tracks == (Track(0, "hvc1", b"B"),)  # no legacy HEVC: v1


def test_split_audio_to_legacy_aac_and_mp3() -> None:
    start = ertmp.build_audio(ExAudioTag(0, (Track(0, "mp4a", b"\x12\x10"), Track(1, "Opus", b"OH")), MANY_CODECS))
    legacy = ertmp.split_audio(start, TrackForm.LEGACY)
    assert legacy[0] == (0, b"\xaf\x00\x12\x10")
    assert ertmp.parse_audio(legacy[1][1]) == ExAudioTag(0, (Track(0, "Opus", b"OH"),))
    mp3 = ertmp.build_audio(ExAudioTag(1, (Track(2, ".mp3", b"\xff\xfb"),), ONE))
    assert ertmp.split_audio(mp3, TrackForm.LEGACY) == [(2, b"\x2f\xff\xfb")]
    assert ertmp.split_audio(mp3) == [(2, mp3)]  # already OneTrack: passed on as it came


def test_split_passes_legacy_payloads_whole_as_track_0() -> None:
    assert ertmp.split_video(b"\x17\x01\x00\x00\x00x") == [(0, b"\x17\x01\x00\x00\x00x")]
    assert ertmp.split_audio(b"\xaf\x01x", TrackForm.LEGACY) == [(0, b"\xaf\x01x")]


# -- fuzz ---------------------------------------------------------------------------------

_headers = st.sampled_from([b"", b"\x96", b"\x97", b"\x95", b"\x97\x02", b"\x96\x10avc1", b"\x96\x20",
                            b"\x95\x20", b"\xd4", b"\x90", b"\x91Opus", b"\x97\xff\x00"])


@settings(max_examples=800, deadline=None)
@given(_headers, st.binary(max_size=64))
def test_any_bytes_parse_or_raise_decode_error(head: bytes, rest: bytes) -> None:
    payload = head + rest
    for parse, split in ((ertmp.parse_video, ertmp.split_video), (ertmp.parse_audio, ertmp.split_audio)):
        try:
            parse(payload)
        except DecodeError:
            pass
        for form in TrackForm:
            try:
                for _, one in split(payload, form):
                    assert isinstance(one, bytes)
            except DecodeError:
                pass
    assert classify(9, payload)[2] in (CRITICAL, VIDEO_KEY, VIDEO_INTER)
    assert classify(8, payload)[2] in (CRITICAL, AUDIO)
    ertmp.peek_video_packet_type(payload)
    ertmp.peek_audio_packet_type(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12))
def test_any_multichannel_config_parses_or_raises_decode_error(data: bytes) -> None:
    try:
        config = ertmp.parse_multichannel_config(data)
    except DecodeError:
        return
    assert ertmp.parse_multichannel_config(config.to_bytes()) == config


_tracks = st.lists(st.tuples(st.integers(0, 255), st.sampled_from(["avc1", "hvc1", "av01"]), st.binary(max_size=20),
                             st.integers(-0x800000, 0x7FFFFF)), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(_tracks, st.sampled_from([0, 1, 2, 3]), st.integers(0, 999_999))
def test_any_video_tag_round_trips(raw: list[tuple[int, str, bytes, int]], packet_type: int, nanos: int) -> None:
    multitrack_type = MANY_CODECS if len(raw) > 1 else ONE
    tracks = tuple(Track(tid, fourcc, data, cts if packet_type == 1 and fourcc != "av01" else 0)
                   for tid, fourcc, data, cts in raw)
    tag = ExVideoTag(KEY, packet_type, tracks, multitrack_type, nanos)
    assert ertmp.parse_video(ertmp.build_video(tag)) == tag


def test_flv_video_codec_names_a_multitrack_message_s_first_track() -> None:
    from neurtmp.codec import flv

    assert flv.video_codec(ff.TWO_H264_TRACK1_SEQUENCE_START) == "avc1"
    assert flv.video_codec(ff.H264_HEVC_TRACK1_KEY_FRAME) == "hvc1"
    assert flv.video_codec(b"\x96\x20") == ""  # cut short
