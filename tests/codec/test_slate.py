"""Slate clips: one key frame then inter frames of the picture, AAC silence, an image file."""

from __future__ import annotations

import pathlib
import subprocess

import imageio_ffmpeg
import pytest

import neurtmp
from neurtmp.codec import aac, avc, encode_slate, flv

from ..media import decode_flv_h264


def test_generated_card_is_a_dark_looping_clip_at_the_asked_size() -> None:
    clip = encode_slate(320, 240, frame_rate=25, seconds=1.0)
    assert flv.is_video_sequence_header(clip.video_header)
    config = avc.parse_decoder_configuration(clip.video_header[5:])
    assert avc.sps_dimensions(config.sps[0]) == (320, 240)
    assert len(clip.video_frames) == 25
    assert flv.is_video_key_frame(clip.video_frames[0])
    assert not any(flv.is_video_key_frame(f) for f in clip.video_frames[1:])
    pictures = decode_flv_h264(clip.video_header, list(clip.video_frames) * 2)  # it loops
    assert len(pictures) == 50
    assert pictures[0].shape == (240, 320, 3)
    assert pictures[-1].mean() < 60  # dark, with a little graphic
    assert pictures[-1].std() > 5
    assert clip.audio_header is None and not clip.audio_frames


def test_silence_matches_the_asked_audio_format() -> None:
    clip = encode_slate(160, 120, sample_rate=48000, channels=1)
    assert clip.audio_header is not None and flv.is_audio_sequence_header(clip.audio_header)
    config = aac.parse_audio_specific_config(clip.audio_header[2:])
    assert (config.sample_rate, config.channels) == (48000, 1)
    assert len(clip.audio_frames) == round(48000 / 1024)
    assert clip.audio_frame_ms == pytest.approx(1000 * 1024 / 48000)
    with pytest.raises(ValueError):
        encode_slate(160, 120, sample_rate=12345, channels=2)


def test_an_image_file_is_scaled_to_the_stream(tmp_path: pathlib.Path) -> None:
    image = tmp_path / "slate.png"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=0x00C000:size=64x48", "-frames:v", "1", str(image)], check=True)
    clip = encode_slate(160, 120, image=str(image))
    picture = decode_flv_h264(clip.video_header, [clip.video_frames[0]])[0]
    assert picture.shape == (120, 160, 3)
    r, g, b = picture.reshape(-1, 3).mean(axis=0)
    assert g > 150 and r < 60 and b < 60
    with pytest.raises(neurtmp.EncodeError):
        encode_slate(160, 120, image=str(tmp_path / "missing.png"))
