"""Codec helpers: FLV peeks, Annex-B/AVCC, the AVC configuration record, and the screen
video encoder checked by decoding with FFmpeg's own decoder (PyAV)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from neurtmp.codec import VideoData, avc, create_video_encoder, encoder_names, flv
from neurtmp.errors import DecodeError, EncodeError

from ..media import decode_flv_h264, encode_h264, level_for


def test_flv_peeks_legacy_and_enhanced() -> None:
    assert flv.is_video_sequence_header(b"\x17\x00\x00\x00\x00\x01")
    assert not flv.is_video_sequence_header(b"\x17\x01\x00\x00\x00")
    assert flv.is_video_key_frame(b"\x17\x01") and not flv.is_video_key_frame(b"\x27\x01")
    assert flv.video_codec(b"\x17") == "avc" and flv.video_codec(b"\x22") == "flv1"
    enhanced_start = bytes((0x80 | 0x10 | 0,)) + b"hvc1"
    enhanced_frame = bytes((0x80 | 0x20 | 1,)) + b"hvc1"
    assert flv.is_video_sequence_header(enhanced_start) and flv.video_codec(enhanced_start) == "hvc1"
    assert not flv.is_video_sequence_header(enhanced_frame) and flv.video_frame_type(enhanced_frame) == 2
    assert flv.is_audio_sequence_header(b"\xaf\x00\x12\x10") and not flv.is_audio_sequence_header(b"\xaf\x01")
    for empty in (b"", b"\x17"):
        assert not flv.is_video_sequence_header(empty)


def test_annexb_and_avcc_round_trip() -> None:
    # the last unit ends with an emulation-prevented 00 00 01
    units = [b"\x67\x64\x00\x1f\xaa", b"\x68\xee\x3c", b"\x65" + bytes(range(1, 101)) + b"\x00\x03\x01"]
    annexb = b"\x00\x00\x00\x01" + units[0] + b"\x00\x00\x01" + units[1] + b"\x00\x00\x00\x01" + units[2]
    assert avc.split_annexb(annexb) == units
    avcc = avc.annexb_to_avcc(annexb)
    assert avcc[:4] == (5).to_bytes(4, "big")
    assert avc.avcc_to_nal_units(avcc) == units
    with pytest.raises(DecodeError):
        avc.avcc_to_nal_units(avcc[:-1])


def test_decoder_configuration_record_round_trip() -> None:
    sps, pps = b"\x67\x64\x00\x1f\xac\xd9", b"\x68\xeb\xe3\xcb"
    record = avc.build_decoder_configuration([sps], [pps])
    assert record[:4] == b"\x01\x64\x00\x1f" and record[4] == 0xFF
    config = avc.parse_decoder_configuration(record)
    assert (config.profile, config.level, config.length_size, config.sps, config.pps) == (0x64, 0x1F, 4, [sps], [pps])
    with pytest.raises(DecodeError):
        avc.parse_decoder_configuration(record[:-2])


def test_h264_test_media_decodes_to_the_encoded_levels() -> None:
    header, frames = encode_h264(12)
    images = decode_flv_h264(header.data, [f.data for f in frames])
    assert len(images) == 12
    for index, image in enumerate(images):
        assert abs(float(image.mean()) - level_for(index)) < 4


def decode_screen_video(payloads: list[bytes]) -> list[np.ndarray]:
    codec = av.CodecContext.create("flashsv", "r")
    images = []
    for payload in payloads:
        for frame in codec.decode(av.Packet(payload[1:])):
            images.append(frame.to_ndarray(format="rgb24"))
    return images


def test_screen_video_encoder_is_lossless_and_sends_only_changed_blocks() -> None:
    assert "screen video" in encoder_names()
    encoder = create_video_encoder("screen video")
    assert encoder is not None and create_video_encoder("no such codec") is None
    assert encoder.get_identifier() == "screen video"
    assert encoder.get_supported_type(0) == "Rgb" and encoder.get_supported_type(9) is None
    assert encoder.set_parameter("block_size", 32) and not encoder.set_parameter("colour", 1)
    with pytest.raises(EncodeError):
        encoder.encode_canvas(np.zeros((10, 10, 3), np.uint8))  # before init
    assert encoder.init(100, 60) is None
    rng = np.random.default_rng(1)
    first = rng.integers(0, 256, (60, 100, 3), dtype=np.uint8)
    second = first.copy()
    second[:20, :20] = 255  # one corner block changes
    rgba = np.dstack([second, second[:, :, :1]])
    frames: list[VideoData] = [encoder.encode_canvas(first), encoder.encode_canvas(rgba)]
    assert frames[0].is_key_frame and frames[0].data[0] == 0x13
    assert not frames[1].is_key_frame and frames[1].data[0] == 0x23
    assert len(frames[1].data) < len(frames[0].data) / 4
    decoded = decode_screen_video([f.data for f in frames])
    assert np.array_equal(decoded[0], first) and np.array_equal(decoded[1], second)
    with pytest.raises(EncodeError):
        encoder.encode_canvas(np.zeros((61, 100, 3), np.uint8))
