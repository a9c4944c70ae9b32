"""Every encoder: encode synthetic frames, decode them back (PyAV, and ffmpeg reading an
FLV file for the FLV path), and compare pixels with a PSNR threshold per codec."""

from __future__ import annotations

import io
import subprocess
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest

from neurtmp.codec import (
    VideoData,
    aac,
    avc,
    create_video_decoder,
    create_video_encoder,
    decoder_names,
    encoder_names,
    flv,
)
from neurtmp.codec.gpu import gpu_count, gpus
from neurtmp.errors import DecodeError, EncodeError

WIDTH, HEIGHT, COUNT = 320, 240, 24

#: Minimum PSNR (dB) of decoded frames against their sources, per codec.
PSNR = {"h264": 30.0, "hevc": 30.0, "sorenson": 24.0, "screen video": 99.0}


def pattern(index: int) -> np.ndarray:
    """A smooth moving gradient with a square: easy to compress, easy to check."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:, :, 0] = (xs * 255 // WIDTH + index * 4) % 256
    image[:, :, 1] = ys * 255 // HEIGHT
    image[:, :, 2] = 128
    x = 20 + index * 8
    image[100:140, x : x + 40] = (250, 250, 20)
    return image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255 * 255 / mse)


def encode_all(name: str) -> tuple[Any, list[VideoData]]:
    encoder = create_video_encoder(name)
    assert encoder is not None
    header = encoder.init(WIDTH, HEIGHT)
    frames = [encoder.encode_canvas(pattern(i)) for i in range(COUNT)]
    tail = encoder.close()
    if tail is not None and tail.data:
        frames.append(tail)
    return header, [f for f in frames if f.data]


def test_registries_know_every_codec_and_refuse_unknown_names() -> None:
    assert encoder_names() == ["h264", "hevc", "screen video", "sorenson"]
    assert decoder_names() == ["h264", "hevc", "screen video", "sorenson"]
    assert create_video_encoder("vp6") is None and create_video_decoder("vp6") is None


@pytest.mark.parametrize("name", ["h264", "hevc", "sorenson", "screen video"])
def test_encode_then_decode_with_pyav(name: str) -> None:
    header, frames = encode_all(name)
    assert frames[0].is_key_frame and len(frames) == COUNT
    decoder = create_video_decoder(name)
    assert decoder is not None
    decoder.init(header)
    images = [decoder.decode_canvas(f) for f in frames]
    images = [i for i in images if i is not None]
    assert len(images) == COUNT
    assert (decoder.width, decoder.height) == (WIDTH, HEIGHT)
    scores = [psnr(image, pattern(i)) for i, image in enumerate(images)]
    assert min(scores) >= PSNR[name], scores


@pytest.mark.parametrize(("name", "ffmpeg_codec"), [("h264", "h264"), ("hevc", "hevc"), ("sorenson", "flv1"),
                                                    ("screen video", "flashsv")])
def test_flv_file_decodes_in_ffmpeg(name: str, ffmpeg_codec: str, tmp_path: Any) -> None:
    header, frames = encode_all(name)
    path = tmp_path / "out.flv"
    with open(path, "wb") as file:
        writer = flv.FlvWriter(file, has_audio=False)
        if header is not None:
            writer.write(flv.TAG_VIDEO, 0, header.data)
        for i, frame in enumerate(frames):
            writer.write(flv.TAG_VIDEO, i * 40, frame.data)
    with open(path, "rb") as file:
        tags = list(flv.FlvReader(file))
    assert len(tags) == len(frames) + (header is not None) and tags[-1].timestamp == (len(frames) - 1) * 40
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path),
               "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    result = subprocess.run(command, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert f"Video: {ffmpeg_codec}" in result.stderr.decode()
    decoded = np.frombuffer(result.stdout, np.uint8).reshape(-1, HEIGHT, WIDTH, 3)
    assert len(decoded) == COUNT
    assert min(psnr(d, pattern(i)) for i, d in enumerate(decoded)) >= PSNR[name] - 1


def test_h264_sequence_header_and_frames_are_well_formed() -> None:
    header, frames = encode_all("h264")
    assert flv.is_video_sequence_header(header.data) and header.data[:2] == b"\x17\x00"
    config = avc.parse_decoder_configuration(header.data[5:])
    assert avc.sps_dimensions(config.sps[0]) == (WIDTH, HEIGHT)
    for frame in frames:
        assert frame.data[1] == 1 and frame.data[2:5] == b"\x00\x00\x00"  # NALUs, CTS 0 (no B-frames)
        units = avc.avcc_to_nal_units(frame.data[5:])
        assert all(u[0] & 0x1F not in (avc.NAL_SPS, avc.NAL_PPS, avc.NAL_AUD) for u in units)
    assert sum(f.is_key_frame for f in frames) == 1  # key_frame_interval 60 > 24 frames


def test_encoder_parameters() -> None:
    encoder = create_video_encoder("h264")
    assert encoder is not None
    for name in ("bitrate", "frame_rate", "key_frame_interval", "preset"):
        assert encoder.get_parameter(name) is not None
    assert encoder.set_parameter("key_frame_interval", 5) and encoder.set_parameter("bitrate", 300_000)
    assert not encoder.set_parameter("no_such_parameter", 1) and encoder.get_parameter("no_such_parameter") is None
    encoder.init(WIDTH, HEIGHT)
    frames = [encoder.encode_canvas(pattern(i)) for i in range(12)]
    assert [f.is_key_frame for f in frames] == [i % 5 == 0 for i in range(12)]
    with pytest.raises(EncodeError):
        encoder.encode_canvas(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(EncodeError):
        encoder.init(321, 240)  # H.264 needs even sizes
    encoder.close()


def test_without_a_gpu_h264_uses_libx264() -> None:
    encoder = create_video_encoder("h264")
    assert encoder is not None
    encoder.init(64, 64)
    if gpu_count():
        assert encoder.codec_name in ("h264_nvenc", "libx264")
        assert gpus()[0].memory_total > 0
    else:
        assert encoder.codec_name == "libx264" and gpus() == []


def test_sps_dimensions_with_cropping() -> None:
    encoder = create_video_encoder("h264")
    assert encoder is not None
    header = encoder.init(1920, 1080)  # 1088 coded lines, cropped to 1080
    config = avc.parse_decoder_configuration(header.data[5:])
    assert avc.sps_dimensions(config.sps[0]) == (1920, 1080)
    with pytest.raises(DecodeError):
        avc.sps_dimensions(b"\x68\x00")


def test_audio_specific_config() -> None:
    config = aac.build_audio_specific_config(44100, 2)
    assert config == b"\x12\x10"
    assert aac.parse_audio_specific_config(config) == aac.AudioSpecificConfig(2, 44100, 2)
    assert aac.aac_sequence_header_tag(config) == b"\xaf\x00\x12\x10"
    assert flv.is_audio_sequence_header(aac.aac_sequence_header_tag(config))
    with pytest.raises(DecodeError):
        aac.parse_audio_specific_config(b"\x12")


def test_enhanced_rtmp_tags() -> None:
    start = flv.enhanced_video_tag("hvc1", flv.EX_SEQUENCE_START, b"config")
    frame = flv.enhanced_video_tag("hvc1", flv.EX_CODED_FRAMES, b"nalus", is_key_frame=True, composition_time=40)
    assert flv.is_video_sequence_header(start) and flv.video_codec(start) == "hvc1"
    assert flv.is_video_key_frame(frame) and frame[5:8] == (40).to_bytes(3, "big") and frame.endswith(b"nalus")
    assert flv.enhanced_video_tag("av01", flv.EX_CODED_FRAMES, b"obu")[5:] == b"obu"  # no CTS for AV1
    with pytest.raises(ValueError):
        flv.enhanced_video_tag("hvc", 0, b"")


def test_flv_reader_refuses_other_files() -> None:
    with pytest.raises(DecodeError):
        list(flv.FlvReader(io.BytesIO(b"RIFF....")))


def test_hevc_configuration_record_carries_the_sps_profile_and_size() -> None:
    from neurtmp.codec import hevc

    encoder = create_video_encoder("hevc")
    assert encoder is not None
    header = encoder.init(1920, 1080)
    assert header.data[:5] == bytes((0x80 | 0x10,)) + b"hvc1"  # E-RTMP SequenceStart, key frame
    config = hevc.parse_decoder_configuration(header.data[5:])
    [sps] = config.arrays[hevc.NAL_SPS]
    assert len(config.arrays[hevc.NAL_VPS]) == 1 and len(config.arrays[hevc.NAL_PPS]) == 1
    assert hevc.sps_dimensions(sps) == (1920, 1080)
    record = header.data[5:]
    assert record[1] & 0x1F == 1  # Main profile, copied from the SPS
    assert record[16] & 0x03 == 1 and record[21] & 0x03 == 3  # 4:2:0, 4-byte NAL lengths
    frame = encoder.encode_canvas(np.zeros((1080, 1920, 3), np.uint8))
    assert frame.is_key_frame and frame.data[0] == 0x80 | 0x10 | flv.EX_CODED_FRAMES and frame.data[1:5] == b"hvc1"
    encoder.close()
    with pytest.raises(DecodeError):
        hevc.parse_decoder_configuration(b"\x01" + bytes(5))
