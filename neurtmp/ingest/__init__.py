"""The ingest app: RTMP in at /live/<key>, an adaptive HLS + DASH ladder out over HTTP.

`neurtmp ingest` runs it; from Python::

    config = IngestConfig.from_sources(os.environ)
    server = neurtmp.Factory().create_server(**config.server_options())
    app = IngestApp(config)
    app.install(server)
    server.start(f"{config.host}:{config.port}")
    http = serve_http(IngestHttp(app.outputs, app.describe), config.host, config.http_port)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neurtmp.ingest.config import ENVIRONMENT, IngestConfig
from neurtmp.lazy import lazy_attributes

if TYPE_CHECKING:
    from neurtmp.ingest.app import IngestApp, IngestStream, choose_encoder
    from neurtmp.ingest.http import IngestHttp, serve_http
    from neurtmp.ingest.ladder import LADDER, Rung, rungs_for

__all__ = ["ENVIRONMENT", "LADDER", "IngestApp", "IngestConfig", "IngestHttp", "IngestStream", "Rung",
           "choose_encoder", "rungs_for", "serve_http"]

#: Public name -> its module, imported on first use: the configuration (and the CLI's
#: help) works without the "ingest" extra; the app itself needs it.
_LAZY = {
    "IngestApp": "neurtmp.ingest.app",
    "IngestStream": "neurtmp.ingest.app",
    "choose_encoder": "neurtmp.ingest.app",
    "IngestHttp": "neurtmp.ingest.http",
    "serve_http": "neurtmp.ingest.http",
    "LADDER": "neurtmp.ingest.ladder",
    "Rung": "neurtmp.ingest.ladder",
    "rungs_for": "neurtmp.ingest.ladder",
}

__getattr__ = lazy_attributes("neurtmp.ingest", _LAZY, globals())
