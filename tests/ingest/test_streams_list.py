"""`/streams`: a finished stream stays listed, marked ended, for a while."""

from __future__ import annotations

import json
from typing import Any

import pytest

import neurtmp
from neurtmp.ingest import app as ingest_app

from ..conftest import url
from ..helpers import wait_for
from .test_ingest import ingest  # noqa: F401 (the fixture)


def listed(app: Any) -> dict[str, dict[str, Any]]:
    status, _, body = app.get("/streams")
    assert status == 200
    return {stream["key"]: stream for stream in json.loads(body)["streams"]}


@pytest.mark.timeout(60)
def test_a_finished_stream_is_listed_as_ended_then_dropped(ingest: Any, monkeypatch: Any) -> None:  # noqa: F811
    monkeypatch.setattr(ingest_app, "ENDED_LISTED_SECONDS", 2.0)
    app = ingest()
    client = neurtmp.connect(url(app.server, "live"), timeout=10)
    client.publish("brief")
    wait_for(lambda: "brief" in listed(app))
    assert (listed(app)["brief"]["live"], listed(app)["brief"]["ended"]) == (True, False)
    client.close()
    wait_for(lambda: "brief" not in app.app.streams)
    entry = listed(app)["brief"]
    assert (entry["live"], entry["ended"]) == (False, True)
    assert app.app.describe(include_ended=False) == []  # what health and metrics count
    # It goes once the listing time is over.
    wait_for(lambda: "brief" not in listed(app), 5)
    # A new publish of the key is listed once, live.
    again = neurtmp.connect(url(app.server, "live"), timeout=10)
    try:
        again.publish("brief")
        wait_for(lambda: "brief" in listed(app))
        status, _, body = app.get("/streams")
        assert [s["key"] for s in json.loads(body)["streams"]] == ["brief"] and listed(app)["brief"]["live"]
    finally:
        again.close()
