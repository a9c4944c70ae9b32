"""A multitrack encoder's ladder (two H.264 tracks passed through as rungs, one rung
transcoded) played by hls.js in headless Chromium from the ingest page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .browser import MISSING, Browser, chromium_paths
from .test_ingest import ingest, wait_master  # noqa: F401 (the fixture)
from .test_multitrack import publish_ladder


@pytest.mark.skipif(chromium_paths() is None, reason=MISSING)
@pytest.mark.timeout(60)
def test_hls_js_plays_the_passed_through_ladder_and_lists_its_levels(ingest: Any) -> None:  # noqa: F811
    app = ingest(passthrough_heights="240")
    encoder = publish_ladder(app.rtmp("mtb"), 30)
    try:
        master = wait_master(app, "mtb", 20)
        assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["640x480", "480x360", "320x240"]
        assert [r["encoder"] for r in app.app.streams["mtb"].describe()["rungs"]] == ["copy", "x264", "copy"]
        with Browser() as browser:
            browser.open(f"{app.base}/?stream=mtb")
            browser.wait("return document.getElementById('now-playing').textContent === 'mtb'", "mtb selected", 20)
            browser.wait("return document.getElementById('player').currentTime > 2", "currentTime past 2 s", 25)
            heights = browser.run("return hls && hls.levels.map(level => level.height)")
            state = browser.state()
        # hls.js lists every rung of the master playlist: the two copied tracks and the transcoded one
        assert sorted(heights) == [240, 360, 480], (heights, state)
        assert state["errors"] == [] and state["video"]["width"] in (320, 480, 640), state
    finally:
        encoder.kill()
        encoder.wait()
