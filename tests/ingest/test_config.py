"""IngestConfig's messages name what the user set: the environment variable or the flag."""

from __future__ import annotations

import pytest

import neurtmp
from neurtmp.ingest import IngestConfig


@pytest.mark.parametrize(("environ", "flags", "message"), [
    ({"RTMP_MAX_BITRATE": "0"}, None, "RTMP_MAX_BITRATE must be positive, not 0.0"),
    ({"RTMP_MAX_BITRATE": "5"}, {"max_bitrate": "-1"}, "--max-bitrate must be positive, not -1.0"),
    ({"RTMP_BITRATE_GRACE": "-1"}, None, "RTMP_BITRATE_GRACE must be >= 0, not -1.0"),
    ({"RTMP_GRPC_PORT": "70000"}, None, "RTMP_GRPC_PORT must be a port (0..65535), not 70000"),
    ({}, {"encoder": "magic"}, "--encoder must be one of auto, x264, nvenc_h264, not 'magic'"),
])
def test_a_bad_value_is_named_as_the_user_set_it(environ: dict[str, str], flags: dict[str, str] | None,
                                                 message: str) -> None:
    with pytest.raises(neurtmp.ConfigError) as info:
        IngestConfig.from_sources(environ, flags)
    assert str(info.value) == message
