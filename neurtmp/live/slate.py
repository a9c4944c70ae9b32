"""Slates for live streams: what players get while a publisher is away.

`Slate` holds the setting (the generated card or an image file) and finds the clip that
fits a stream: H.264 at the stream's resolution, AAC silence at its audio's rate when it
has audio. Each distinct clip is encoded once per process, in gevent's threadpool (other
streams keep flowing), and cached; `SlateLoop` plays one into a live stream in real time,
the same payloads every turn with timestamps that go on from the stream's clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gevent
from gevent.event import AsyncResult

import neurtmp
from neurtmp import MessageType, Packet
from neurtmp.codec import aac, avc, flv

if TYPE_CHECKING:
    from neurtmp.codec import SlateClip

__all__ = ["Slate", "SlateCacheInfo", "SlateLoop", "cache_info", "clear_cache"]

log = logging.getLogger(__name__)

#: Slate frames per second (a still picture needs few; players take any rate).
FRAME_RATE = 25
#: Length of the encoded clip; it loops, so only its start-up cost depends on it.
CLIP_SECONDS = 1.0
#: Distinct clips kept (one per resolution, audio format and image in use).
_CACHE_ENTRIES = 32

#: (width, height, sample rate, channels, image) -> the clip (None: none fits).
_cache: dict[tuple[int, int, int, int, str | None], AsyncResult] = {}
_encodes = 0
_missing_extra_logged = False


@dataclass(frozen=True)
class SlateCacheInfo:
    """The process-wide slate cache: clips encoded so far and clips held."""

    encodes: int
    entries: int


def clear_cache() -> None:
    """Forget the encoded clips: the next stream of each shape encodes its own again."""
    _cache.clear()


def cache_info() -> SlateCacheInfo:
    """How many slate clips this process has encoded, and how many it holds."""
    return SlateCacheInfo(_encodes, len(_cache))


def _encode_or_fail(width: int, height: int, sample_rate: int, channels: int, image: str | None
                    ) -> SlateClip | Exception:
    """(In a worker thread.) The clip, or the error that prevented it: a slate that cannot
    be made leaves players the last frame, it never stops the stream."""
    try:
        return neurtmp.codec.encode_slate(width, height, sample_rate=sample_rate, channels=channels, image=image,
                                          frame_rate=FRAME_RATE, seconds=CLIP_SECONDS)
    except Exception as exc:  # (PyAV's own errors included)
        return exc


def _encode(width: int, height: int, sample_rate: int, channels: int, image: str | None) -> SlateClip | None:
    global _encodes, _missing_extra_logged
    _encodes += 1
    started = time.monotonic()
    shape = (width, height, sample_rate, channels, image)
    clip: SlateClip | Exception = gevent.get_hub().threadpool.apply(_encode_or_fail, shape)
    if isinstance(clip, neurtmp.MissingExtra):
        if not _missing_extra_logged:
            log.warning("no slate: %s; players see the last frame while a publisher is away", clip)
            _missing_extra_logged = True
        return None
    if isinstance(clip, Exception):
        log.warning("no slate for %dx%d: %s: %s; players see the last frame", width, height,
                    type(clip).__name__, clip)
        return None
    log.info("slate %dx%d%s encoded in %.0f ms (%d bytes)", width, height,
             f" with {sample_rate} Hz silence" if sample_rate else "", (time.monotonic() - started) * 1000,
             clip.nbytes)
    return clip


class Slate:
    """Slate setting of a live app.

    Args:
        image: picture file scaled to each stream's size; None: a generated dark card.
    """

    def __init__(self, image: str | None = None) -> None:
        self.image = image

    def prepare(self, video_header: Packet | None, audio_header: Packet | None, path: str = "") -> AsyncResult:
        """Start finding the clip for a stream with these sequence headers (encoding it
        if no stream needed one like it before); the result is the clip, or None when
        no slate fits (logged: an audio-only stream, a codec other than H.264)."""
        result = AsyncResult()
        key = self._key(video_header, audio_header, path)
        if key is None:
            result.set(None)
            return result
        cached = _cache.get(key)
        if cached is not None:
            return cached
        while len(_cache) >= _CACHE_ENTRIES:
            del _cache[next(iter(_cache))]
        _cache[key] = result
        gevent.spawn(lambda: result.set(_encode(*key)))
        return result

    def _key(self, video_header: Packet | None, audio_header: Packet | None, path: str
             ) -> tuple[int, int, int, int, str | None] | None:
        if video_header is None:
            log.info("%s: no slate for a stream without video", path)
            return None
        codec = flv.video_codec(video_header.payload)
        if codec != "avc":
            log.info("%s: no slate for %s video (H.264 only); players see the last frame", path, codec)
            return None
        try:
            config = avc.parse_decoder_configuration(video_header.payload[5:])
            width, height = avc.sps_dimensions(config.sps[0])
        except (neurtmp.DecodeError, IndexError) as exc:
            log.info("%s: no slate: unreadable H.264 sequence header (%s)", path, exc)
            return None
        sample_rate = channels = 0
        if audio_header is not None and audio_header.payload[:1] and audio_header.payload[0] >> 4 == flv.AUDIO_AAC:
            try:
                audio = aac.parse_audio_specific_config(audio_header.payload[2:])
                sample_rate, channels = audio.sample_rate, audio.channels
            except neurtmp.DecodeError as exc:
                log.info("%s: slate without audio: unreadable AAC config (%s)", path, exc)
        return width + width % 2, height + height % 2, sample_rate, channels, self.image


class SlateLoop:
    """Plays a slate clip into `feed` in real time, from timestamp `start` on, until
    stopped: its sequence headers first (players' decoders switch to the clip), then the
    clip over and over (each turn starts with its key frame)."""

    def __init__(self, clip: AsyncResult, feed: Callable[[Packet], None], start: int) -> None:
        self._clip = clip
        self._feed = feed
        self._start = start
        #: Timestamp of the last packet fed (None before the first).
        self.last_timestamp: int | None = None
        self._greenlet = gevent.spawn(self._run)

    @property
    def playing(self) -> bool:
        return not self._greenlet.dead

    def stop(self) -> None:
        """Stop at once (from another greenlet)."""
        self._greenlet.kill(block=False)

    def _run(self) -> None:
        clip: SlateClip | None = self._clip.get()
        if clip is None:
            return
        started = time.monotonic()
        start = self._start
        video = [Packet(MessageType.VIDEO, 0, payload) for payload in clip.video_frames]
        audio = [Packet(MessageType.AUDIO, 0, payload) for payload in clip.audio_frames]
        self._send(Packet(MessageType.VIDEO, start, clip.video_header))
        if clip.audio_header is not None:
            self._send(Packet(MessageType.AUDIO, start, clip.audio_header))
        video_index = audio_index = 0
        audio_ms = clip.audio_frame_ms
        while True:
            video_at = video_index * 1000 / clip.frame_rate
            audio_at = audio_index * audio_ms if audio else float("inf")
            if video_at <= audio_at:
                packet, at = video[video_index % len(video)], video_at
                video_index += 1
            else:
                packet, at = audio[audio_index % len(audio)], audio_at
                audio_index += 1
            delay = started + at / 1000 - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            self._send(packet.retimed((start + round(at)) & 0xFFFFFFFF))

    def _send(self, packet: Packet) -> None:
        self.last_timestamp = packet.timestamp
        self._feed(packet)
