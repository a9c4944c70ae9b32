"""Slates: a still picture (and silence) encoded once as a short clip that loops.

While a publisher is away, players keep getting a "back in a moment" picture at the
stream's own resolution and codec. Looping a clip costs nothing per frame: its key frame
starts every turn and the other frames repeat the same picture, so the same payloads go
out again with new timestamps. The picture is a generated dark card (no font files) or
an image file scaled to the stream's size; the audio, when there is any, is AAC silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from neurtmp.codec import aac, flv
from neurtmp.codec.pyav import H264Encoder
from neurtmp.errors import EncodeError

__all__ = ["AAC_FRAME_SAMPLES", "SlateClip", "encode_slate", "slate_picture"]

#: Samples in one AAC-LC frame.
AAC_FRAME_SAMPLES = 1024

#: Background of the generated card: dark enough to tell from any live picture at a glance.
_BACKGROUND = (18, 20, 28)
_FOREGROUND = (170, 175, 190)


@dataclass(frozen=True)
class SlateClip:
    """An encoded slate: FLV tag bodies, ready to loop.

    Attributes:
        video_header: the video sequence header (the clip's own SPS/PPS).
        video_frames: one key frame, then inter frames, `frame_rate` per second.
        frame_rate: video frames per second.
        audio_header: the AAC sequence header, or None for a clip without audio.
        audio_frames: AAC silence frames (any of them may follow any other).
        sample_rate: audio samples per second (0 without audio).
    """

    video_header: bytes
    video_frames: tuple[bytes, ...]
    frame_rate: int
    audio_header: bytes | None = None
    audio_frames: tuple[bytes, ...] = ()
    sample_rate: int = 0

    @property
    def audio_frame_ms(self) -> float:
        """Milliseconds of audio in one AAC frame (0 without audio)."""
        return 1000 * AAC_FRAME_SAMPLES / self.sample_rate if self.sample_rate else 0.0

    @property
    def nbytes(self) -> int:
        return sum(map(len, (self.video_header, *self.video_frames, self.audio_header or b"", *self.audio_frames)))


def slate_picture(width: int, height: int, image: str | None = None) -> np.ndarray:
    """The slate's picture, H x W x 3 uint8: `image` (any format FFmpeg reads, scaled to
    width x height), or a generated dark card with three dots ("back in a moment").

    Raises:
        EncodeError: the image cannot be read.
    """
    if image is not None:
        try:
            with av.open(image) as container:
                frame = next(container.decode(video=0))
                picture: np.ndarray = frame.to_ndarray(width=width, height=height, format="rgb24")
                return picture
        except (av.FFmpegError, StopIteration, OSError) as exc:
            raise EncodeError(f"cannot read slate image {image!r}: {exc}") from None
    card = np.empty((height, width, 3), np.uint8)
    card[:] = _BACKGROUND
    ys, xs = np.ogrid[:height, :width]
    radius = max(2, min(width, height) // 24)
    for step in (-1, 0, 1):  # three dots across the middle
        cx, cy = width // 2 + step * radius * 4, height // 2
        card[(xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2] = _FOREGROUND
    bar = max(1, height // 60)  # a thin line under them
    top = height // 2 + radius * 3
    card[top : top + bar, width // 4 : width * 3 // 4] = _FOREGROUND
    return card


def _encode_video(picture: np.ndarray, frame_rate: int, frames: int) -> tuple[bytes, list[bytes]]:
    height, width = picture.shape[:2]
    encoder = H264Encoder()
    for name, value in (("frame_rate", frame_rate), ("key_frame_interval", frames + 1), ("hardware", "never"),
                        ("bitrate", max(200_000, width * height * 2))):
        encoder.set_parameter(name, value)
    header = encoder.init(width, height).data
    payloads = [data.data for data in (encoder.encode_canvas(picture) for _ in range(frames)) if data.data]
    last = encoder.close()
    if last is not None and last.data:
        payloads.append(last.data)
    if not payloads or not flv.is_video_key_frame(payloads[0]):
        raise EncodeError("the slate's first frame is not a key frame")
    return header, payloads[:frames]


def _encode_silence(sample_rate: int, channels: int, frames: int) -> tuple[bytes, list[bytes]]:
    context: Any = av.CodecContext.create("aac", "w")
    context.sample_rate = sample_rate
    context.layout = "mono" if channels == 1 else "stereo"
    context.format = "fltp"
    context.time_base = Fraction(1, sample_rate)
    context.bit_rate = 32_000 * max(1, min(channels, 2))
    context.open()
    config = bytes(context.extradata or b"") or aac.build_audio_specific_config(sample_rate, min(channels, 2) or 1)
    silence = np.zeros((1 if channels == 1 else 2, AAC_FRAME_SAMPLES), np.float32)
    packets: list[Any] = []
    for index in range(frames + 4):  # the encoder's priming delay: ask for a few more
        frame = av.AudioFrame.from_ndarray(silence, format="fltp", layout=context.layout.name)
        frame.sample_rate = sample_rate
        frame.pts = index * AAC_FRAME_SAMPLES
        packets.extend(context.encode(frame))
    packets.extend(context.encode(None))
    payloads = [bytes(p) for p in packets if p.size][-frames:]
    return aac.aac_sequence_header_tag(config), [aac.aac_frame_tag(p) for p in payloads]


def encode_slate(width: int, height: int, *, sample_rate: int = 0, channels: int = 0, image: str | None = None,
                 frame_rate: int = 25, seconds: float = 1.0) -> SlateClip:
    """Encode a slate clip: H.264 video of width x height (libx264, one key frame and
    `seconds` * `frame_rate` - 1 inter frames), and with `sample_rate`, AAC-LC silence.

    Blocking and CPU-bound (it releases the GIL while encoding): run it off the event
    loop. Raises EncodeError (bad size, unreadable image) or ValueError (AAC rate).
    """
    frames = max(1, round(seconds * frame_rate))
    header, video = _encode_video(slate_picture(width, height, image), frame_rate, frames)
    if not sample_rate:
        return SlateClip(header, tuple(video), frame_rate)
    aac.build_audio_specific_config(sample_rate, 2)  # a rate AAC has an index for, or ValueError
    audio_frames = max(1, round(seconds * sample_rate / AAC_FRAME_SAMPLES))
    audio_header, audio = _encode_silence(sample_rate, channels, audio_frames)
    return SlateClip(header, tuple(video), frame_rate, audio_header, tuple(audio), sample_rate)
