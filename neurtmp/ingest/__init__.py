"""The ingest app: RTMP in at /live/<key>, an adaptive HLS + DASH ladder out over HTTP.

`neurtmp ingest` runs it; from Python::

    config = IngestConfig.from_sources(os.environ)
    server = neurtmp.Factory().create_server()
    app = IngestApp(config)
    app.install(server)
    server.start(f"{config.host}:{config.port}")
    http = serve_http(IngestHttp(app.stream_dir, app.describe), config.host, config.http_port)
"""

from __future__ import annotations

from neurtmp.ingest.app import IngestApp, IngestStream, choose_encoder
from neurtmp.ingest.config import ENVIRONMENT, IngestConfig
from neurtmp.ingest.http import IngestHttp, serve_http
from neurtmp.ingest.ladder import LADDER, Rung, rungs_for

__all__ = ["ENVIRONMENT", "LADDER", "IngestApp", "IngestConfig", "IngestHttp", "IngestStream", "Rung",
           "choose_encoder", "rungs_for", "serve_http"]
