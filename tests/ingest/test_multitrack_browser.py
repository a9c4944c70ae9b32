"""A multitrack encoder's ladder (two H.264 tracks passed through as rungs, one rung
transcoded, two audio tracks as audio renditions) played in headless Chromium from the
ingest page: hls.js switches between the passed-through rungs and between the audio
renditions, dash.js lists the same audio choice."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .browser import MISSING, Browser, chromium_paths
from .test_ingest import ingest, wait_master  # noqa: F401 (the fixture)
from .test_multitrack import publish_ladder

SWITCH_TO_HEIGHT = """
const index = hls.levels.findIndex(level => level.height === arguments[0]);
hls.currentLevel = index;
return index;
"""


@pytest.mark.skipif(chromium_paths() is None, reason=MISSING)
@pytest.mark.timeout(90)
def test_hls_js_switches_passed_through_rungs_and_audio_renditions(ingest: Any) -> None:  # noqa: F811
    app = ingest(passthrough_heights="240", audio_languages="en,fr")
    encoder = publish_ladder(app.rtmp("mtb"), 45, tones=(440, 880))
    try:
        master = wait_master(app, "mtb", 20)
        assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["640x480", "480x360", "320x240"]
        assert [r["encoder"] for r in app.app.streams["mtb"].describe()["rungs"]] == ["copy", "x264", "copy"]
        with Browser() as browser:
            browser.open(f"{app.base}/?stream=mtb")
            browser.wait("return document.getElementById('now-playing').textContent === 'mtb'", "mtb selected", 20)
            browser.wait("return document.getElementById('player').currentTime > 2", "currentTime past 2 s", 25)
            heights = browser.run("return hls && hls.levels.map(level => level.height)")
            # hls.js lists every rung of the master playlist: the two copied tracks and the transcoded one
            assert sorted(heights) == [240, 360, 480], (heights, browser.state())
            # ... and switches between the two passed-through rungs (the encoder's own bitstreams)
            for height in (240, 480):
                assert browser.run(SWITCH_TO_HEIGHT, height) >= 0
                browser.wait(f"return document.getElementById('player').videoHeight === {height}",
                             f"the {height}-line rung playing", 25)
            # The audio selector offers the encoder's two audio tracks; picking the second switches to it
            browser.wait("return !document.getElementById('audio-choice').hidden", "the audio selector shown", 10)
            options = browser.run("return [...document.getElementById('audio-track').options].map(o => o.text)")
            assert options == ["en", "fr"], options
            browser.run("window.__audioSwitched = null;"
                        "hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (e, data) => { window.__audioSwitched = data.id; });"
                        "const select = document.getElementById('audio-track');"
                        "select.value = '1'; select.dispatchEvent(new Event('change'));")
            browser.wait("return window.__audioSwitched === 1 && hls.audioTracks[hls.audioTrack].lang === 'fr'",
                         "the fr rendition switched to", 20)
            played = browser.run("return document.getElementById('player').currentTime")
            browser.wait(f"return document.getElementById('player').currentTime > {played + 1}",
                         "playing on after the audio switch", 20)
            state = browser.state()
            assert state["errors"] == [], state
            # dash.js: the same two audio renditions, from the MPD's audio AdaptationSets
            browser.open(f"{app.base}/?stream=mtb&player=dash")
            browser.wait("return document.getElementById('player').currentTime > 1", "dash.js playing", 25)
            browser.wait("return !document.getElementById('audio-choice').hidden", "the dash audio selector", 10)
            options = browser.run("return [...document.getElementById('audio-track').options].map(o => o.text)")
            assert options == ["en", "fr"], options
    finally:
        encoder.kill()
        encoder.wait()
