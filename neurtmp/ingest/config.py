"""IngestConfig: the ingest app's settings, from RTMP_* environment variables and flags.

Each field has an environment variable (the proxy-rtmp names where it has one); a flag
of `neurtmp ingest` overrides it; the dataclass default applies otherwise. `validate()`
says what is wrong in one line.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import neurtmp
from neurtmp.ingest.renditions import language_list
from neurtmp.live import LiveOptions

__all__ = ["ENVIRONMENT", "IngestConfig", "default_output_dir"]

#: Encoders `encoder` may name ("auto": NVENC when a GPU is usable, else x264).
ENCODERS = ("auto", "x264", "nvenc_h264")


def default_output_dir() -> str:
    """Per-user: $XDG_CACHE_HOME/neurtmp/ingest (~/.cache/neurtmp/ingest)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "neurtmp", "ingest")


@dataclass
class IngestConfig:
    """Settings of `neurtmp ingest` (see the README's "Ingest app" section)."""

    #: Address the RTMP server listens on.
    host: str = "0.0.0.0"
    #: RTMP port.
    port: int = 1935
    #: Streams published at once; the next publish is refused (403).
    max_streams: int = 100
    #: Highest input bitrate in Mbit/s, over a sliding window; above it (past a grace
    #: period) the publisher is disconnected (403).
    max_bitrate: float = 10.0
    #: Highest input height in lines; a taller stream is refused (403).
    max_resolution: int = 1080
    #: HTTP port of the playlists, segments, page and JSON list.
    http_port: int = 8080
    #: Port of the gRPC ModuleService (plaintext; for the load balancer's internal use).
    grpc_port: int = 50053
    #: Address the gRPC ModuleService listens on ("": the same as `host`); 127.0.0.1 or a
    #: private interface keeps it internal.
    grpc_host: str = ""
    #: Where each stream's segments and playlists are written (a folder per stream).
    output_dir: str = dataclasses.field(default_factory=default_output_dir)
    #: Segment length in seconds (key frames are aligned to it across rungs).
    segment_duration: float = 2.0
    #: "auto", "x264" or "nvenc_h264".
    encoder: str = "auto"
    #: x264 preset of the ladder.
    preset: str = "veryfast"
    #: ffmpeg binary ("": the one imageio-ffmpeg installs).
    ffmpeg: str = ""
    #: HMAC secret for publish tokens (unset: anyone may publish).
    auth_secret: str | None = None
    #: Seconds a finished stream's files are kept before they are removed.
    keep_finished: float = 300.0
    #: Seconds without progress from ffmpeg, while input flows, before it is restarted.
    stall_timeout: float = 15.0
    #: Seconds a publisher may send no audio or video before it is disconnected (its
    #: transcoder stops, the key is free again); 0: never. The server's default.
    publisher_idle_timeout: float = neurtmp.ServerOptions.publisher_idle_timeout
    #: Seconds over the bitrate limit before a publisher is disconnected.
    bitrate_grace: float = 5.0
    #: Application name encoders publish to.
    app: str = "live"
    #: Seconds a stream stays live after its publisher left: the transcoder is fed the
    #: slate (the playlists go on), and a publisher of the key within it is spliced in;
    #: 0: the stream ends at once. The live app's default.
    reconnect_grace: float = LiveOptions.reconnect_grace
    #: What the stream carries during the grace: unset the generated card, an image
    #: file (scaled to the stream), or "none" for the last frame, frozen.
    slate: str | None = None
    #: Seconds a primary publisher may send no audio or video before the stream switches
    #: to the key's backup publisher (``rtmp://HOST/live/KEY?role=backup``).
    failover_timeout: float = LiveOptions.failover_timeout
    #: Heights (comma-separated, e.g. "240,144") of a multitrack encoder's tracks to pass
    #: through as rungs of their own though the ladder has none of that height (a track
    #: of a rung's height is always passed through when the tracks' key frames align).
    passthrough_heights: str = ""
    #: Languages (comma-separated RFC 5646 tags, e.g. "en,fr") of the encoder's audio
    #: tracks in track id order: the first is the ladder's default audio, the others
    #: alternate renditions (unset: what the encoder's metadata says, if anything).
    audio_languages: str = ""

    def validate(self, names: Mapping[str, str] | None = None) -> None:
        """Args:
            names: field -> what the user set it with (an environment variable or a
                flag), for the messages; a field not in it is named as itself.

        Raises:
            ConfigError: a value out of range, in one line.
        """
        def name(field: str) -> str:
            return (names or {}).get(field, field)

        for field in ("port", "http_port", "grpc_port"):
            value = getattr(self, field)
            if not 0 <= value <= 65535:
                raise neurtmp.ConfigError(f"{name(field)} must be a port (0..65535), not {value}")
        positive = ("max_streams", "max_bitrate", "max_resolution", "segment_duration", "stall_timeout",
                    "failover_timeout")
        for field in positive:
            if getattr(self, field) <= 0:
                raise neurtmp.ConfigError(f"{name(field)} must be positive, not {getattr(self, field)}")
        for field in ("keep_finished", "bitrate_grace", "publisher_idle_timeout", "reconnect_grace"):
            if getattr(self, field) < 0:
                raise neurtmp.ConfigError(f"{name(field)} must be >= 0, not {getattr(self, field)}")
        if self.encoder not in ENCODERS:
            raise neurtmp.ConfigError(f"{name('encoder')} must be one of {', '.join(ENCODERS)}, not {self.encoder!r}")
        if self.ffmpeg and not os.access(self.ffmpeg, os.X_OK):
            raise neurtmp.ConfigError(f"{name('ffmpeg')} {self.ffmpeg!r} is not an executable file")
        if self.slate not in (None, "", "none") and not os.path.isfile(self.slate):
            raise neurtmp.ConfigError(f"{name('slate')} {self.slate!r} is not a file")
        try:
            self.passthrough_height_list()
        except ValueError:
            raise neurtmp.ConfigError(f"{name('passthrough_heights')} must be heights separated by commas, "
                                      f"not {self.passthrough_heights!r}") from None
        try:
            language_list(self.audio_languages)
        except ValueError as exc:
            raise neurtmp.ConfigError(f"{name('audio_languages')} must be language tags separated by commas "
                                      f"(en,fr), not {exc.args[0]!r}") from None
        path = pathlib.Path(self.output_dir)
        if path.exists() and not path.is_dir():
            raise neurtmp.ConfigError(f"{name('output_dir')} {self.output_dir!r} is not a directory")

    def server_options(self) -> dict[str, Any]:
        """The `neurtmp.ServerOptions` keywords this configuration sets, for
        ``neurtmp.Factory().create_server(**config.server_options())``."""
        return {"publisher_idle_timeout": self.publisher_idle_timeout}

    def live_options(self) -> LiveOptions:
        """The live app's settings for this configuration's streams."""
        return LiveOptions(apps=(self.app,), reconnect_grace=self.reconnect_grace, slate=self.slate or None,
                           failover_timeout=self.failover_timeout)

    def passthrough_height_list(self) -> tuple[int, ...]:
        """`passthrough_heights` as numbers.

        Raises:
            ValueError: one is not a positive whole number.
        """
        heights = tuple(int(part) for part in self.passthrough_heights.replace(" ", "").split(",") if part)
        if any(height <= 0 for height in heights):
            raise ValueError(self.passthrough_heights)
        return heights

    def ffmpeg_path(self) -> str:
        """The ffmpeg to run."""
        if self.ffmpeg:
            return self.ffmpeg
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())

    @classmethod
    def from_sources(cls, environ: Mapping[str, str], flags: Mapping[str, Any] | None = None) -> IngestConfig:
        """Defaults, overridden by RTMP_* variables, overridden by flags (None: not given).

        Raises:
            ConfigError: a value that is not of the field's type, or out of range.
        """
        values: dict[str, Any] = {}
        names = dict(ENVIRONMENT)  # what a message calls a field: how the user sets it
        for field in dataclasses.fields(cls):
            variable = ENVIRONMENT[field.name]
            if variable in environ and environ[variable] != "":
                values[field.name] = _convert(field, environ[variable], variable)
            if flags and flags.get(field.name) is not None:
                names[field.name] = f"--{field.name.replace('_', '-')}"
                values[field.name] = _convert(field, flags[field.name], names[field.name])
        config = cls(**values)
        config.validate(names)
        return config


#: Field -> environment variable.
ENVIRONMENT = {field.name: f"RTMP_{field.name.upper()}" for field in dataclasses.fields(IngestConfig)}


def _convert(field: dataclasses.Field[Any], value: Any, source: str) -> Any:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "str")
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except (TypeError, ValueError):
        raise neurtmp.ConfigError(f"{source} must be a number, not {value!r}") from None
    return str(value)
