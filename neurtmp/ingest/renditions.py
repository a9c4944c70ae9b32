"""An encoder's audio tracks as the ladder's audio renditions.

An Enhanced RTMP v2 publisher may send several audio tracks (languages, commentary). The
default one (the lowest track id, track 0 as a rule) is the ladder's main audio; each
other becomes an alternate rendition players can pick: an #EXT-X-MEDIA entry of the HLS
master playlist's audio group, and a DASH AdaptationSet of its own with its ``lang``.
Every rendition is encoded once (AAC) and shared by all video rungs.

A track's language is the operator's (`IngestConfig.audio_languages`, in track id order),
else what the encoder's onMetaData says of it (``audioTrackIdInfoMap`` of E-RTMP v2, a
``language`` or ``lang`` entry; the default track: a top-level ``language``), else none.

ffmpeg's dash muxer writes the master playlist's audio entries itself, named
``audio_<stream index>`` and without LANGUAGE; `label_master` names them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAIN_AUDIO", "AudioRendition", "audio_renditions", "label_master", "language_list"]

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True)
class AudioRendition:
    """One audio track of the input, encoded once for every rung.

    Attributes:
        track: its E-RTMP track id (0 for a single-track stream).
        language: an RFC 5646 tag ("en", "fra"), or None when nobody said.
        default: the one players start with (the lowest track id).
    """

    track: int = 0
    language: str | None = None
    default: bool = True

    @property
    def name(self) -> str:
        """What players list it as: its language, else "Track N"."""
        return self.language or f"Track {self.track}"


#: The audio of a stream with one audio track.
MAIN_AUDIO = (AudioRendition(),)


def language_list(text: str) -> tuple[str, ...]:
    """Comma-separated language tags ("en,fr"); an empty entry means "not said".

    Raises:
        ValueError: an entry that is not a language tag.
    """
    languages = tuple(part.strip() for part in text.split(",")) if text.strip() else ()
    for language in languages:
        if language and not _LANGUAGE.fullmatch(language):
            raise ValueError(language)
    return languages


def _said_language(track: int, metadata: Mapping[str, Any]) -> str | None:
    if track == 0:
        entry: Any = metadata
    else:
        info = metadata.get("audioTrackIdInfoMap")
        entry = info.get(str(track), info.get(track)) if isinstance(info, Mapping) else None
    if not isinstance(entry, Mapping):
        return None
    for key in ("language", "lang"):
        value = entry.get(key)
        if isinstance(value, str) and _LANGUAGE.fullmatch(value):
            return value
    return None


def audio_renditions(tracks: Sequence[int], languages: Sequence[str] = (),
                     metadata: Mapping[str, Any] | None = None) -> tuple[AudioRendition, ...]:
    """The renditions of an input's audio `tracks` (ids), in track id order.

    Args:
        languages: the operator's, the i-th for the i-th track ("" or missing: not said).
        metadata: the encoder's onMetaData.
    """
    ordered = sorted(set(tracks))
    renditions = []
    for index, track in enumerate(ordered):
        language = languages[index] if index < len(languages) and languages[index] else None
        renditions.append(AudioRendition(track, language or _said_language(track, metadata or {}), index == 0))
    return tuple(renditions)


def _quoted(value: str) -> str:
    return value.replace('"', "'").replace("\n", " ")


def label_master(master: str, renditions: Sequence[AudioRendition]) -> str:
    """ffmpeg's master playlist with its audio entries (listed in stream order, one per
    rendition) named after `renditions`: NAME, LANGUAGE, DEFAULT and AUTOSELECT."""
    lines = []
    index = 0
    for line in master.splitlines():
        if line.startswith("#EXT-X-MEDIA:TYPE=AUDIO,") and index < len(renditions):
            rendition = renditions[index]
            index += 1
            language = f'LANGUAGE="{_quoted(rendition.language)}",' if rendition.language else ""
            line = re.sub(r'NAME="[^"]*",DEFAULT=(YES|NO),',
                          f'{language}NAME="{_quoted(rendition.name)}",'
                          f'DEFAULT={"YES" if rendition.default else "NO"},AUTOSELECT=YES,', line, count=1)
        lines.append(line)
    return "\n".join(lines) + ("\n" if master.endswith("\n") else "")
