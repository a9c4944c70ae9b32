"""Enhanced RTMP capability negotiation in `connect` (sans-IO).

A client states in the connect command object what it can take beyond legacy RTMP:

- `fourCcList`: a strict array of FourCCs ("hvc1", "Opus", ... or "*" for any), the
  E-RTMP v1 way;
- `videoFourCcInfoMap` / `audioFourCcInfoMap`: FourCC -> FourCcInfo flags (CanDecode 1,
  CanEncode 2, CanForward 4), "*" for any codec (its flags apply to every codec);
- `capsEx`: CapsEx flags (Reconnect 1, Multitrack 2, ModEx 4, TimestampNanoOffset 8).

A server that speaks E-RTMP answers with its own in the properties object of the
connect `_result`. `Capabilities` is one side's statement, read from or written to
those AMF fields.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Capabilities", "CapsEx", "FourCcInfo"]


class CapsEx(enum.IntFlag):
    """The `capsEx` bits: extended capabilities beyond codecs."""

    RECONNECT = 0x01  # handles NetConnection.Connect.ReconnectRequest
    MULTITRACK = 0x02
    MOD_EX = 0x04  # can parse the ModEx signal
    TIMESTAMP_NANO_OFFSET = 0x08


class FourCcInfo(enum.IntFlag):
    """What one side can do with a codec (`[audio|video]FourCcInfoMap` values)."""

    CAN_DECODE = 0x01
    CAN_ENCODE = 0x02
    CAN_FORWARD = 0x04


#: The FourCC that stands for every codec.
WILDCARD = "*"
#: What "can take a codec" means for a receiver: it decodes it or passes it on.
_CAN_TAKE = FourCcInfo.CAN_DECODE | FourCcInfo.CAN_FORWARD
#: Entries read from a peer's map or list at most (a connect is small; this bounds a hostile one).
MAX_FOURCC_ENTRIES = 256


def _fourcc_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, Mapping):  # some encoders send the array as an ECMA array / object
        value = list(value.values())
    if not isinstance(value, (list, tuple)):
        return None
    return tuple(str(v) for v in value[:MAX_FOURCC_ENTRIES] if isinstance(v, str))


def _info_map(value: Any) -> dict[str, FourCcInfo]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, FourCcInfo] = {}
    for key, flags in list(value.items())[:MAX_FOURCC_ENTRIES]:
        if isinstance(flags, (int, float)) and not isinstance(flags, bool) and flags == flags:
            out[str(key)] = FourCcInfo(int(flags) & 0x07) if 0 <= flags < 2**31 else FourCcInfo(0)
    return out


def _caps_ex(value: Any) -> CapsEx:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 2**31:
        return CapsEx(int(value) & 0x0F)
    return CapsEx(0)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """One side's E-RTMP capabilities, as stated in connect or its `_result`.

    Attributes:
        fourcc_list: the `fourCcList` sent, or None when there was none.
        video_fourcc_info: `videoFourCcInfoMap` (empty when none was sent).
        audio_fourcc_info: `audioFourCcInfoMap` (empty when none was sent).
        caps_ex: the `capsEx` flags (0 when none was sent).
        announced: the side sent at least one of those fields: it speaks E-RTMP.
    """

    fourcc_list: tuple[str, ...] | None = None
    video_fourcc_info: Mapping[str, FourCcInfo] = field(default_factory=dict)
    audio_fourcc_info: Mapping[str, FourCcInfo] = field(default_factory=dict)
    caps_ex: CapsEx = CapsEx(0)
    announced: bool = False

    @classmethod
    def from_object(cls, obj: Any) -> Capabilities:
        """Read the fields from a connect command object or a `_result` properties
        object. Anything malformed is ignored (a legacy peer gives empty capabilities)."""
        if not isinstance(obj, Mapping):
            return cls()
        present = any(key in obj for key in ("fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap", "capsEx"))
        return cls(_fourcc_list(obj.get("fourCcList")), _info_map(obj.get("videoFourCcInfoMap")),
                   _info_map(obj.get("audioFourCcInfoMap")), _caps_ex(obj.get("capsEx")), present)

    @classmethod
    def of(cls, fourccs: Iterable[str] = (), *, video: Mapping[str, int] | None = None,
           audio: Mapping[str, int] | None = None, caps_ex: int = 0) -> Capabilities:
        """Our own statement: codecs for `fourCcList`, info maps, and `capsEx` flags."""
        return cls(tuple(fourccs), {k: FourCcInfo(v) for k, v in (video or {}).items()},
                   {k: FourCcInfo(v) for k, v in (audio or {}).items()}, CapsEx(caps_ex), True)

    def to_object(self) -> dict[str, Any]:
        """The AMF fields stating these capabilities (for connect or its `_result`)."""
        out: dict[str, Any] = {}
        if self.fourcc_list is not None:
            out["fourCcList"] = list(self.fourcc_list)
        if self.video_fourcc_info:
            out["videoFourCcInfoMap"] = {k: float(v) for k, v in self.video_fourcc_info.items()}
        if self.audio_fourcc_info:
            out["audioFourCcInfoMap"] = {k: float(v) for k, v in self.audio_fourcc_info.items()}
        if self.caps_ex or self.announced:
            out["capsEx"] = float(self.caps_ex)
        return out

    @property
    def multitrack(self) -> bool:
        """The side can take Multitrack messages."""
        return bool(self.caps_ex & CapsEx.MULTITRACK)

    @property
    def reconnect(self) -> bool:
        """The side handles NetConnection.Connect.ReconnectRequest."""
        return bool(self.caps_ex & CapsEx.RECONNECT)

    @property
    def mod_ex(self) -> bool:
        """The side can parse ModEx signals (such as a nanosecond timestamp offset)."""
        return bool(self.caps_ex & (CapsEx.MOD_EX | CapsEx.TIMESTAMP_NANO_OFFSET))

    def video_info(self, fourcc: str) -> FourCcInfo:
        """What the side can do with a video codec: its own flags and the wildcard's."""
        return self._info(self.video_fourcc_info, fourcc)

    def audio_info(self, fourcc: str) -> FourCcInfo:
        """What the side can do with an audio codec: its own flags and the wildcard's."""
        return self._info(self.audio_fourcc_info, fourcc)

    def _info(self, table: Mapping[str, FourCcInfo], fourcc: str) -> FourCcInfo:
        flags = table.get(fourcc, FourCcInfo(0)) | table.get(WILDCARD, FourCcInfo(0))
        if self.fourcc_list is not None and (fourcc in self.fourcc_list or WILDCARD in self.fourcc_list):
            flags |= FourCcInfo.CAN_DECODE  # a v1 list says "I can take it", nothing finer
        return flags

    def can_take_video(self, fourcc: str) -> bool:
        """The side decodes or forwards this enhanced video codec."""
        return bool(self.video_info(fourcc) & _CAN_TAKE)

    def can_take_audio(self, fourcc: str) -> bool:
        """The side decodes or forwards this enhanced audio codec."""
        return bool(self.audio_info(fourcc) & _CAN_TAKE)
