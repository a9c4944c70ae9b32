"""Encoders and decoders on PyAV (FFmpeg's libraries): H.264, Sorenson H.263, screen video.

H.264 uses libx264 tuned for low latency (no B-frames, no look-ahead) by default, or
h264_nvenc when NVML reports a GPU and the encoder opens. Its `init` returns the AVC
sequence header built from the encoder's SPS/PPS; frames are AVCC NAL units.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

import av
import numpy as np

from neurtmp.codec import avc, flv, hevc
from neurtmp.codec.encoders import VideoEncoder
from neurtmp.codec.gpu import gpu_count
from neurtmp.codec.video_data import VideoData
from neurtmp.errors import DecodeError, EncodeError, EncoderNotFound

__all__ = ["H264Decoder", "H264Encoder", "HEVCDecoder", "HEVCEncoder", "PyAVDecoder", "ScreenVideoDecoder",
           "SorensonDecoder", "SorensonEncoder", "VideoDecoder"]

log = logging.getLogger(__name__)

_GLOBAL_HEADER = int(av.codec.context.Flags.global_header)


class _PyAVEncoder(VideoEncoder):
    """Common PyAV encoder plumbing: open on init, encode canvases, flush on close."""

    #: FFmpeg encoder names; the first is the software one.
    codec_names: tuple[str, ...] = ()
    #: The NVENC encoder used when a GPU is present ("hardware" parameter: auto/always/never).
    hardware_codec = ""
    pix_fmt = "yuv420p"
    parameters = {"bitrate": 1_000_000, "frame_rate": 30, "key_frame_interval": 60, "preset": "veryfast"}

    def __init__(self) -> None:
        super().__init__()
        self._context: Any = None
        self._pts = 0
        self.codec_name = ""

    def _options(self, codec_name: str) -> dict[str, str]:
        return {}

    def _open(self, width: int, height: int) -> Any:
        errors = []
        for name in self._candidates():
            try:
                context: Any = av.CodecContext.create(name, "w")
                context.width, context.height = width, height
                context.pix_fmt = self.pix_fmt
                rate = int(self._values["frame_rate"])
                context.time_base = Fraction(1, rate)
                context.framerate = Fraction(rate, 1)
                context.bit_rate = int(self._values["bitrate"])
                context.gop_size = int(self._values["key_frame_interval"])
                context.flags |= _GLOBAL_HEADER
                context.options = self._options(name)
                context.open()
            except Exception as exc:  # codec missing, no device, bad option: try the next
                errors.append(f"{name}: {exc}")
                continue
            self.codec_name = name
            return context
        raise EncoderNotFound(f"no working {self.identifier} encoder ({'; '.join(errors)})")

    def _candidates(self) -> tuple[str, ...]:
        """The software codec, the NVENC one, or both, by the "hardware" parameter."""
        software, hardware = self.codec_names[0], self.hardware_codec
        choice = str(self._values.get("hardware", "never"))
        if not hardware or choice == "never" or (choice == "auto" and not gpu_count()):
            return (software,)
        if choice == "always":
            return (hardware,)
        return (hardware, software)

    def init(self, width: int, height: int) -> Any:
        super().init(width, height)
        if width % 2 or height % 2:
            raise EncodeError(f"{self.identifier} needs even dimensions, not {width}x{height}")
        self.close_context()
        self._context = self._open(width, height)
        self._pts = 0
        return self._sequence_header()

    def _sequence_header(self) -> Any:
        return None

    def _encode(self, rgb: np.ndarray) -> Any:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._pts
        self._pts += 1
        try:
            packets = self._context.encode(frame)
        except av.FFmpegError as exc:
            raise EncodeError(f"{self.codec_name} failed: {exc}") from None
        return self._wrap(packets)

    def _wrap(self, packets: list[Any]) -> VideoData:
        if not packets:
            return VideoData(b"", False)
        key = any(p.is_keyframe for p in packets)
        return VideoData(self._tag(b"".join(bytes(p) for p in packets), key), key)

    def _tag(self, data: bytes, key: bool) -> bytes:
        raise NotImplementedError

    def close_context(self) -> list[Any]:
        packets: list[Any] = []
        if self._context is not None:
            try:
                packets = self._context.encode(None)
            except av.FFmpegError:
                packets = []
            self._context = None
        return packets

    def close(self) -> Any:
        packets = self.close_context()
        super().close()
        return self._wrap(packets) if packets else None


#: NVENC settings for live streaming: fastest preset, ultra-low-latency tuning, no B-frames.
_NVENC_OPTIONS = {"preset": "p1", "tune": "ull", "zerolatency": "1", "bf": "0", "rc": "cbr"}


class H264Encoder(_PyAVEncoder):
    """H.264 as AVC video tags: libx264 (low latency), or NVENC when a GPU is present."""

    identifier = "h264"
    codec_names = ("libx264",)
    hardware_codec = "h264_nvenc"
    parameters = {**_PyAVEncoder.parameters, "preset": "veryfast", "hardware": "auto"}

    def _options(self, codec_name: str) -> dict[str, str]:
        if codec_name == self.hardware_codec:
            return dict(_NVENC_OPTIONS)
        return {"preset": str(self._values["preset"]), "tune": "zerolatency", "bf": "0",
                "x264-params": "repeat-headers=0:aud=0:scenecut=0"}

    def _sequence_header(self) -> VideoData:
        extradata = bytes(self._context.extradata or b"")
        if extradata[:1] == b"\x01":
            record = extradata
        else:
            units = avc.split_annexb(extradata)
            sps = [u for u in units if u[0] & 0x1F == avc.NAL_SPS]
            pps = [u for u in units if u[0] & 0x1F == avc.NAL_PPS]
            if not sps or not pps:
                raise EncodeError(f"{self.codec_name} gave no SPS/PPS")
            record = avc.build_decoder_configuration(sps, pps)
        return VideoData(flv.avc_sequence_header_tag(record), True)

    def _tag(self, data: bytes, key: bool) -> bytes:
        drop = frozenset({avc.NAL_AUD, avc.NAL_SPS, avc.NAL_PPS})
        return flv.avc_video_tag(avc.annexb_to_avcc(data, drop), key)


class HEVCEncoder(_PyAVEncoder):
    """H.265 over enhanced RTMP ("hvc1"): libx265 (low latency), or NVENC with a GPU."""

    identifier = "hevc"
    codec_names = ("libx265",)
    hardware_codec = "hevc_nvenc"
    parameters = {**_PyAVEncoder.parameters, "preset": "ultrafast", "hardware": "auto"}

    def _options(self, codec_name: str) -> dict[str, str]:
        if codec_name == self.hardware_codec:
            return dict(_NVENC_OPTIONS)
        return {"preset": str(self._values["preset"]), "tune": "zerolatency",
                "x265-params": "log-level=error:bframes=0:repeat-headers=0:scenecut=0"}

    def _sequence_header(self) -> VideoData:
        units = avc.split_annexb(bytes(self._context.extradata or b""))
        by_type: dict[int, list[bytes]] = {}
        for unit in units:
            by_type.setdefault(hevc.nal_type(unit), []).append(unit)
        record = hevc.build_decoder_configuration(by_type.get(hevc.NAL_VPS, []), by_type.get(hevc.NAL_SPS, []),
                                                  by_type.get(hevc.NAL_PPS, []))
        return VideoData(flv.enhanced_video_tag("hvc1", flv.EX_SEQUENCE_START, record), True)

    def _tag(self, data: bytes, key: bool) -> bytes:
        out = bytearray()
        for unit in avc.split_annexb(data):
            if hevc.nal_type(unit) in (hevc.NAL_AUD, hevc.NAL_VPS, hevc.NAL_SPS, hevc.NAL_PPS):
                continue
            out += len(unit).to_bytes(4, "big") + unit
        return flv.enhanced_video_tag("hvc1", flv.EX_CODED_FRAMES, bytes(out), key)


class SorensonEncoder(_PyAVEncoder):
    """Sorenson Spark (FLV codec 2, an H.263 variant): FFmpeg's "flv" encoder."""

    identifier = "sorenson"
    codec_names = ("flv",)

    def _tag(self, data: bytes, key: bool) -> bytes:
        return bytes(((flv.FRAME_KEY if key else flv.FRAME_INTER) << 4 | flv.VIDEO_SORENSON,)) + data


# -- decoders -----------------------------------------------------------------------------


class VideoDecoder:
    """Decodes FLV video payloads into RGB canvases (neuray's decoder mirror).

    `init(data)` takes the sequence header (or None for codecs without one);
    `decode_canvas(data)` returns an H x W x 3 uint8 array, or None while buffering.
    """

    identifier = ""

    def __init__(self) -> None:
        self.width = 0
        self.height = 0

    def get_identifier(self) -> str:
        return self.identifier

    def init(self, data: bytes | VideoData | None = None) -> None:
        raise NotImplementedError

    def decode_canvas(self, data: bytes | VideoData) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PyAVDecoder(VideoDecoder):
    codec_name = ""

    def init(self, data: bytes | VideoData | None = None) -> None:
        self._context: Any = av.CodecContext.create(self.codec_name, "r")

    def _payload(self, data: bytes | VideoData) -> bytes:
        return data.data if isinstance(data, VideoData) else bytes(data)

    def _decode(self, raw: bytes) -> np.ndarray | None:
        try:
            frames = self._context.decode(av.Packet(raw))
        except av.FFmpegError as exc:
            raise DecodeError(f"{self.codec_name} failed: {exc}") from None
        if not frames:
            return None
        image: np.ndarray = frames[-1].to_ndarray(format="rgb24")
        self.height, self.width = image.shape[:2]
        return image

    def decode_canvas(self, data: bytes | VideoData) -> np.ndarray | None:
        return self._decode(self._payload(data)[1:])


class H264Decoder(PyAVDecoder):
    identifier = "h264"
    codec_name = "h264"

    def init(self, data: bytes | VideoData | None = None) -> None:
        super().init()
        self._prefix = b""
        if data is not None:
            payload = self._payload(data)
            config = avc.parse_decoder_configuration(payload[5:])
            self._prefix = b"".join(b"\x00\x00\x00\x01" + u for u in config.sps + config.pps)
            self.width, self.height = avc.sps_dimensions(config.sps[0])

    def decode_canvas(self, data: bytes | VideoData) -> np.ndarray | None:
        payload = self._payload(data)
        if flv.is_video_sequence_header(payload):
            self.init(payload)
            return None
        units = avc.avcc_to_nal_units(payload[5:])
        annexb = b"".join(b"\x00\x00\x00\x01" + u for u in units)
        if flv.is_video_key_frame(payload):
            annexb = self._prefix + annexb
        return self._decode(annexb)


class HEVCDecoder(PyAVDecoder):
    """Decodes enhanced-RTMP "hvc1" payloads (SequenceStart, CodedFrames, CodedFramesX)."""

    identifier = "hevc"
    codec_name = "hevc"

    def init(self, data: bytes | VideoData | None = None) -> None:
        super().init()
        self._prefix = b""
        if data is not None:
            payload = self._payload(data)
            config = hevc.parse_decoder_configuration(payload[5:])
            self._prefix = b"".join(b"\x00\x00\x00\x01" + u for u in config.parameter_sets())
            self.width, self.height = hevc.sps_dimensions(config.arrays[hevc.NAL_SPS][0])

    def decode_canvas(self, data: bytes | VideoData) -> np.ndarray | None:
        payload = self._payload(data)
        if flv.is_video_sequence_header(payload):
            self.init(payload)
            return None
        packet_type = payload[0] & 0x0F
        body = payload[8:] if packet_type == flv.EX_CODED_FRAMES else payload[5:]
        annexb = b"".join(b"\x00\x00\x00\x01" + u for u in avc.avcc_to_nal_units(body))
        if flv.is_video_key_frame(payload):
            annexb = self._prefix + annexb
        return self._decode(annexb)


class SorensonDecoder(PyAVDecoder):
    identifier = "sorenson"
    codec_name = "flv"


class ScreenVideoDecoder(PyAVDecoder):
    identifier = "screen video"
    codec_name = "flashsv"
