"""Mp4File: a recording as fragmented MP4 (H.264 and AAC), remuxed in-process with PyAV.

Fragmented (``frag_keyframe+empty_moov+default_base_moof``): the header is written
first and a fragment at each key frame, so a file cut short (a crash, a full disk) still
plays up to its last fragment. No re-encoding: the FLV bodies lose their few header
bytes and become MP4 samples. The output streams are made from the stream's own sequence
headers: a tiny in-memory FLV (header and sequence headers) opened with PyAV's FLV
demuxer gives streams with the AVCDecoderConfigurationRecord and AudioSpecificConfig as
extradata, which serve as templates; the picture size comes from the SPS.

Blocking: used from a worker thread (see `neurtmp.record.recording`).
"""

from __future__ import annotations

import io
import logging
import os
from fractions import Fraction
from typing import Any

from neurtmp import Packet
from neurtmp.codec import avc, flv
from neurtmp.errors import CodecError, DecodeError, MissingExtra
from neurtmp.record.files import create_exclusive
from neurtmp.record.segmenter import Start, Write

__all__ = ["Mp4File", "load_pyav"]

log = logging.getLogger(__name__)

#: The mp4 muxer's options: fragments at key frames, the moov first, offsets per fragment;
#: each fragment written through to the file when complete (not left in a buffer).
MUXER_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
#: FLV timestamps are milliseconds.
_MILLISECONDS = Fraction(1, 1000)
#: FLV audio sound format of AAC (the first byte's high nibble).
_SOUND_AAC = 10
#: Bytes before the AVC NAL units of a legacy FLV video body (flags, packet type, composition time).
_AVC_HEADER = 5
#: Bytes before the raw AAC frame of an FLV audio body (flags, packet type).
_AAC_HEADER = 2
#: AVC / AAC packet type of a coded frame (0 is the sequence header, 2 the end of sequence).
_CODED = 1


def load_pyav() -> Any:
    """The `av` module.

    Raises:
        MissingExtra: PyAV is not installed (the "codec" extra).
    """
    try:
        import av
    except ImportError as exc:
        raise MissingExtra("MP4 recording", "codec", exc.name or "av") from exc
    return av


def _is_avc(header: Packet | None) -> bool:
    return header is not None and len(header.payload) > _AVC_HEADER and not header.payload[0] & 0x80 \
        and header.payload[0] & 0x0F == flv.VIDEO_AVC


def _is_aac(header: Packet | None) -> bool:
    return header is not None and len(header.payload) > _AAC_HEADER and header.payload[0] >> 4 == _SOUND_AAC


class Mp4File:
    """A fragmented MP4 file of the stream's H.264 video and AAC audio; other codecs'
    tracks are left out (one log line), and a stream with neither cannot be recorded.

    Args:
        stem: DIR/APP/NAME/NAME-STAMP (`create_exclusive` adds [-N].mp4).
        start: the sequence headers the file begins with.

    Raises:
        CodecError: neither H.264 video nor AAC audio.
        MissingExtra: no PyAV.
    """

    extension = "mp4"

    def __init__(self, stem: str, start: Start) -> None:
        av = self._av = load_pyav()
        video = next((p for p in start.headers if p.is_video), None)
        audio = next((p for p in start.headers if p.is_audio), None)
        left_out = [what for what, header, ok in (("video", video, _is_avc(video)), ("audio", audio, _is_aac(audio)))
                    if header is not None and not ok]
        if not _is_avc(video) and not _is_aac(audio):
            raise CodecError("MP4 recording takes H.264 video and AAC audio: the stream has neither")
        if left_out:
            log.warning("%s: MP4 recording leaves out the %s track (H.264 and AAC only)", stem, " and ".join(left_out))
        probe_bytes = flv.file_header(_is_aac(audio), _is_avc(video)) + b"".join(
            flv.tag_bytes(p.type_id, 0, p.payload) for p in (video, audio) if p is not None and
            (_is_avc(p) if p.is_video else _is_aac(p)))
        self.path, fd = create_exclusive(stem, self.extension)
        os.close(fd)  # PyAV opens it by name (and writes it natively)
        self.size = 0
        self._last_dts: dict[int, int] = {}
        probe = av.open(io.BytesIO(probe_bytes), format="flv")
        try:
            self._container = av.open(self.path, "w", format="mp4", options=MUXER_OPTIONS)
            self._video = self._audio = None
            try:
                for template in probe.streams:
                    stream = self._container.add_stream_from_template(template)
                    if template.type == "video":
                        assert video is not None
                        self._set_picture_size(stream, video.payload[_AVC_HEADER:])
                        self._video = stream
                    else:
                        self._audio = stream
            except BaseException:
                self._container.close()
                raise
        finally:
            probe.close()

    @staticmethod
    def _set_picture_size(stream: Any, record: bytes) -> None:
        try:
            sps = avc.parse_decoder_configuration(record).sps
            width, height = avc.sps_dimensions(sps[0]) if sps else (0, 0)
        except DecodeError as exc:
            raise CodecError(f"unreadable H.264 sequence header: {exc}") from None
        stream.codec_context.width, stream.codec_context.height = width, height

    def write(self, op: Write) -> None:
        packet = op.packet
        payload = packet.payload
        if packet.is_video:
            stream, skip = self._video, _AVC_HEADER
            if stream is None or len(payload) <= skip or payload[1] != _CODED:
                return
            composition = int.from_bytes(payload[2:5], "big", signed=True)
        elif packet.is_audio:
            stream, skip, composition = self._audio, _AAC_HEADER, 0
            if stream is None or len(payload) <= skip or payload[1] != _CODED:
                return
        else:
            return  # data messages have no place in the MP4
        dts = op.timestamp
        last = self._last_dts.get(stream.index)
        if last is not None and dts <= last:  # the muxer wants strictly increasing times
            dts = last + 1
        self._last_dts[stream.index] = dts
        sample = self._av.Packet(payload[skip:])
        sample.stream = stream
        sample.time_base = _MILLISECONDS
        sample.dts = dts
        sample.pts = max(dts, op.timestamp + composition)
        sample.is_keyframe = packet.is_key_frame or packet.is_audio
        self._container.mux(sample)
        self.size += len(payload) - skip

    def flush(self) -> None:
        """(The muxer writes each fragment as it completes.)"""

    def close(self) -> None:
        self._container.close()

    def abandon(self) -> None:
        """Close after a write error, ignoring further errors."""
        try:
            self._container.close()
        except Exception:  # the disk that failed the writes fails the trailer too
            log.debug("%s: closing after a write error failed too", self.path)
