"""A multitrack encoder's ladder: its tracks passed through as rungs, the rest transcoded."""

from __future__ import annotations

import io
import json
import logging
import pathlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import av
import numpy
import pytest
from gevent import subprocess

import neurtmp
from neurtmp.codec import avc
from neurtmp.ingest.ladder import Rung, plan_rungs
from neurtmp.ingest.multitrack import AlignmentWatch, TrackProbe
from neurtmp.ingest.renditions import AudioRendition, audio_renditions, label_master, language_list

from ..helpers import wait_for
from ..live.helpers import FFMPEG
from ..live.test_grace import colour_name
from .test_grpc import Served
from .test_ingest import Ingest, disconnection, ingest, segments, wait_master  # noqa: F401 (the fixture)


def publish_ladder(target: str, seconds: float, gops: tuple[int, int] = (30, 30),
                   tones: tuple[int, ...] = (440,), smallest_first: bool = False,
                   drift_after: int | None = None) -> subprocess.Popen:
    """ffmpeg 9 publishing 640x480 (track 0) and 320x240 (track 1), Enhanced RTMP v2 (with
    `smallest_first`, the other way round), and an audio track of a sine of each frequency
    in `tones` (tracks 0, 1, ...). With `drift_after` N, track 1's key frames are those of
    track 0 (every second) for N seconds, then half a second later."""
    drift = [] if drift_after is None else [
        "-force_key_frames:v:1", f"expr:gte(t,if(lt(n_forced,{drift_after}),n_forced,n_forced-0.5))"]
    videos = ["-map", "[b2]", "-map", "[a]"] if smallest_first else ["-map", "[a]", "-map", "[b2]"]
    sines = [arg for tone in tones for arg in ("-f", "lavfi", "-i", f"sine=frequency={tone}")]
    audio_maps = [arg for index in range(len(tones)) for arg in ("-map", f"{index + 1}:a")]
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30",
         *sines, "-t", str(seconds),
         "-filter_complex", "[0:v]split=2[a][b];[b]scale=320:240[b2]", *videos, *audio_maps,
         "-c:v", "libx264", "-preset", "ultrafast", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
         "-g:v:0", str(gops[0]), "-g:v:1", str(gops[1]), *drift, "-c:a", "aac", "-f", "flv", target],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def segment_tone(app: Ingest, key: str, media: str, last: bool = False) -> float:
    """The loudest frequency (Hz) of a media playlist's first (or `last`) segment of audio,
    decoded with PyAV; 0 for silence."""
    playlist = app.text(f"/streams/{key}/{media}")
    init = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', playlist)[-1 if last else 0]
    chosen = segments(playlist)[-1 if last else 0]
    data = app.get(f"/streams/{key}/{init}")[2] + app.get(f"/streams/{key}/{chosen}")[2]
    with av.open(io.BytesIO(data)) as container:
        rate = container.streams.audio[0].codec_context.sample_rate
        samples = numpy.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    spectrum = numpy.abs(numpy.fft.rfft(samples))
    if spectrum[1:].max() < 1e-3 * len(samples):
        return 0.0  # silence
    return float(numpy.argmax(spectrum[1:]) + 1) * rate / len(samples)


def segment_sps(app: Ingest, key: str, media: str) -> tuple[bytes, int, int]:
    """(first SPS, width, frames) of a media playlist's first segment, decoded with PyAV."""
    playlist = app.text(f"/streams/{key}/{media}")
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist).group(1)  # type: ignore[union-attr]
    data = app.get(f"/streams/{key}/{init}")[2] + app.get(f"/streams/{key}/{segments(playlist)[0]}")[2]
    with av.open(io.BytesIO(data)) as container:
        extradata = container.streams.video[0].codec_context.extradata
        frames = list(container.decode(video=0))
    return avc.parse_decoder_configuration(extradata).sps[0], frames[0].width, len(frames)


def published_sps(app: Ingest, key: str, track: int) -> bytes:
    header = app.app.streams[key].live.tracks.video[track]
    parts = dict(neurtmp.split_video(header.payload, neurtmp.TrackForm.LEGACY))
    return avc.parse_decoder_configuration(parts[track][5:]).sps[0]


@pytest.fixture
def served(make_server: Any, tmp_path: pathlib.Path) -> Iterator[Served]:
    """An ingest app with its gRPC endpoint, passing 240-line tracks through too."""
    instance = Served(make_server, tmp_path, passthrough_heights="240", audio_languages="en,fr")
    yield instance
    instance.close()


def test_plan_passes_through_the_tracks_of_rung_heights() -> None:
    rungs = plan_rungs([(1920, 1080, 6000), (1280, 720, 3100), (854, 480, 1400)])
    assert [(r.name, r.copy_of) for r in rungs] == [("1080p", 0), ("720p", 1), ("480p", 2), ("360p", None)]
    assert rungs[0] == Rung("1080p", 1920, 1080, 6000, 0)
    assert [(r.height, r.copy_of) for r in plan_rungs([(640, 480, 900), (320, 240, 300)], (240,))] == [
        (480, 0), (360, None), (240, 1)]


def test_probe_sees_misaligned_key_frames() -> None:
    probe = TrackProbe(0)
    for t in range(0, 3001, 100):
        probe.note(0, t, 1000, t % 1000 == 0)
        probe.note(1, t, 500, t % 1500 == 0)
    assert probe.ready and not probe.aligned()
    assert probe.kbps(0) == 1000 * 8 * 31 // 3000  # bits per ms over the key frames seen


@pytest.mark.timeout(90)
def test_a_multitrack_ladder_is_passed_through_and_the_missing_rung_transcoded(served: Served) -> None:
    app = served
    encoder = publish_ladder(app.rtmp("mt"), 9, tones=(440, 880))
    try:
        master = wait_master(app, "mt", 30)
        assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["640x480", "480x360", "320x240"]
        # The encoder's two audio tracks: the default audio and an alternate rendition, named as configured
        assert re.findall(r'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="(\w+)",LANGUAGE="(\w+)",NAME="(\w+)",DEFAULT=(\w+),'
                          r'AUTOSELECT=YES,.*URI="(media_\d\.m3u8)"', master) == [
            ("group_A1", "en", "en", "YES", "media_3.m3u8"), ("group_A1", "fr", "fr", "NO", "media_4.m3u8")]
        assert all('AUDIO="group_A1"' in line for line in master.splitlines() if line.startswith("#EXT-X-STREAM"))
        assert all(int(b) > 50_000 for b in re.findall(r"BANDWIDTH=(\d+)", master))  # measured, for the copies
        for media in ("media_0.m3u8", "media_1.m3u8", "media_2.m3u8"):
            wait_for(lambda media=media: len(segments(app.text(f"/streams/mt/{media}"))) >= 2, 20)
        # The passed-through rungs carry the encoder's bitstream; the transcoded one is x264's own.
        sps, width, frames = segment_sps(app, "mt", "media_0.m3u8")
        assert sps == published_sps(app, "mt", 0) and width == 640 and frames >= 25
        sps, width, frames = segment_sps(app, "mt", "media_2.m3u8")
        assert sps == published_sps(app, "mt", 1) and width == 320 and frames >= 25
        sps, width, frames = segment_sps(app, "mt", "media_1.m3u8")
        assert sps != published_sps(app, "mt", 0) and width == 480 and frames >= 25
        # Each audio rendition carries its own track: 440 Hz on track 0, 880 Hz on track 1
        assert abs(segment_tone(app, "mt", "media_3.m3u8") - 440) < 10
        assert abs(segment_tone(app, "mt", "media_4.m3u8") - 880) < 10
        manifest = ET.fromstring(app.get("/streams/mt/dash/manifest.mpd")[2])
        audio_sets = [a for a in manifest.iter(f"{MPD}AdaptationSet") if a.get("contentType") == "audio"]
        assert [(a.get("lang"), len(a.findall(f"{MPD}Representation"))) for a in audio_sets] == [("en", 1), ("fr", 1)]
        # The rungs' segments line up (key frames aligned).
        durations = [re.findall(r"#EXTINF:([\d.]+)", app.text(f"/streams/mt/media_{i}.m3u8"))[:2] for i in range(3)]
        assert durations[0] == durations[2] and [round(float(d), 1) for d in durations[1]] == \
            [round(float(d), 1) for d in durations[0]]
        listed = json.loads(app.get("/streams")[2])
        stream = next(s for s in (listed if isinstance(listed, list) else listed["streams"]) if s["key"] == "mt")
        assert [(r["name"], r["encoder"]) for r in stream["rungs"]] == [
            ("480p", "copy"), ("360p", "x264"), ("240p", "copy")]
        assert stream["keyframes_aligned"] is True
        assert [(a["track"], a["language"], a["default"]) for a in stream["audio"]] == [
            (0, "en", True), (1, "fr", False)]
        wait_for(lambda: served.rpc("GetRoutes").routes and served.rpc("GetRoutes").routes[0].profiles, 10)
        [route] = served.rpc("GetRoutes").routes
        assert [(p.name, p.encoder, p.resolution) for p in route.profiles] == [
            ("480p", "copy", 480), ("360p", "x264", 360), ("240p", "copy", 240)]
        assert not route.keyframes_misaligned
        assert route.profiles[0].bitrate == stream["rungs"][0]["bitrate_kbps"] > 50  # measured
    finally:
        encoder.kill()
        encoder.wait()


@pytest.mark.timeout(90)
def test_misaligned_key_frames_are_transcoded_and_said(ingest: Any, caplog: Any) -> None:  # noqa: F811
    app = ingest()
    with caplog.at_level(logging.WARNING):
        encoder = publish_ladder(app.rtmp("skew"), 7, gops=(30, 45))
        try:
            master = wait_master(app, "skew", 30)
            assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["640x480", "480x360"]
            stream = app.app.streams["skew"].describe()
            assert stream["keyframes_aligned"] is False
            assert {r["encoder"] for r in stream["rungs"]} == {"x264"}
        finally:
            encoder.kill()
            encoder.wait()
    assert any("not aligned" in r.message for r in caplog.records)


MPD = "{urn:mpeg:dash:schema:mpd:2011}"


def test_the_alignment_watch_sees_tracks_drift_apart_one_gop_late() -> None:
    watch = AlignmentWatch(0, [0, 1])
    # aligned GOPs of 1 s; track 1's key frame of an instant comes after track 0's
    for t in range(0, 4000, 100):
        assert watch.note(0, t, t % 1000 == 0)
        assert watch.note(1, t, t % 1000 == 0)
    assert watch.misaligned is None
    # from 4 s, track 1 puts a key frame mid-GOP too: seen once track 0's GOP from 4 s is judged
    verdicts = []
    for t in range(4000, 7000, 100):
        verdicts.append(watch.note(0, t, t % 1000 == 0))
        verdicts.append(watch.note(1, t, t % 500 == 0))
    assert verdicts.index(False) == 40 and watch.aligned_gops == 0  # judged at track 0's key frame of 6 s
    assert watch.misaligned is not None and "track 1 had key frames at [4000, 4500] ms" in watch.misaligned
    # aligned again: counted GOP by GOP (a run transcoding for a while may pass the tracks through again)
    for t in range(7000, 10100, 100):
        watch.note(1, t, t % 1000 == 0)
        watch.note(0, t, t % 1000 == 0)
    assert watch.aligned_gops == 2


def test_audio_renditions_take_the_operators_languages_else_the_encoders_metadata() -> None:
    metadata = {"audioTrackIdInfoMap": {"2": {"language": "de"}, "1": {"lang": "fr", "audiodatarate": 96}}}
    assert audio_renditions([2, 0, 1], ("en",), metadata) == (
        AudioRendition(0, "en", True), AudioRendition(1, "fr", False), AudioRendition(2, "de", False))
    assert audio_renditions([0, 3], (), {"language": "es"}) == (AudioRendition(0, "es"), AudioRendition(3, None, False))
    assert AudioRendition(3, None, False).name == "Track 3"
    assert language_list(" en , ,pt-BR") == ("en", "", "pt-BR")
    with pytest.raises(ValueError):
        language_list("en,english please")


def test_the_master_playlists_audio_entries_are_named() -> None:
    master = ('#EXTM3U\n#EXT-X-VERSION:7\n'
              '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="audio_1",DEFAULT=YES,CHANNELS="2",URI="media_1.m3u8"\n'
              '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="audio_2",DEFAULT=YES,CHANNELS="2",URI="media_2.m3u8"\n'
              '#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2,AUDIO="group_A1"\nmedia_0.m3u8\n')
    labelled = label_master(master, (AudioRendition(0, "en"), AudioRendition(1, None, False)))
    assert labelled.splitlines()[2:4] == [
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",LANGUAGE="en",NAME="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",'
        'URI="media_1.m3u8"',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="Track 1",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",'
        'URI="media_2.m3u8"']
    assert labelled.endswith("media_0.m3u8\n") and label_master(master, ()) == master


@pytest.mark.timeout(90)
def test_tracks_that_drift_apart_later_get_every_rung_transcoded_from_then_on(ingest: Any,  # noqa: F811
                                                                            caplog: Any) -> None:
    app = ingest(passthrough_heights="240")
    with caplog.at_level(logging.WARNING):
        encoder = publish_ladder(app.rtmp("drift"), 15, gops=(30, 1000), drift_after=4)
        try:
            wait_master(app, "drift", 30)
            stream = app.app.streams["drift"]
            wait_for(lambda: stream.describe()["keyframes_aligned"] is False, 20, "the drift seen")
            assert [r["encoder"] for r in stream.describe()["rungs"]] == ["x264"] * 3
            wait_for(lambda: stream.transcoder.status == "encoding", 10, "the new run")
            assert stream.transcoder.restarts == 1
            # the same ladder goes on, after a discontinuity, with x264's bitstream on the 240p rung
            wait_for(lambda: len(app.text("/streams/drift/media_2.m3u8").partition("\n#EXT-X-DISCONTINUITY\n")[2]
                                 .split("#EXTINF")) >= 3, 20, "segments of the new run")
            playlist = app.text("/streams/drift/media_2.m3u8")
            after = segments(playlist.partition("\n#EXT-X-DISCONTINUITY\n")[2])
            init = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', playlist)[-1]
            data = app.get(f"/streams/drift/{init}")[2] + app.get(f"/streams/drift/{after[0]}")[2]
            with av.open(io.BytesIO(data)) as container:
                extradata = container.streams.video[0].codec_context.extradata
                frames = list(container.decode(video=0))
            assert frames[0].width == 320 and avc.parse_decoder_configuration(extradata).sps[0] != \
                published_sps(app, "drift", 1)
        finally:
            encoder.kill()
            encoder.wait()
    assert [r.message for r in caplog.records if "no longer aligned" in r.message]


def latest_segment(app: Ingest, key: str, media: str) -> tuple[str, bytes, int]:
    """(what the newest segment of a media playlist shows: colour_name of its first frame,
    its SPS, its media sequence number), decoded with PyAV."""
    playlist = app.text(f"/streams/{key}/{media}")
    init = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', playlist)[-1]
    first = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist).group(1))  # type: ignore[union-attr]
    listed = segments(playlist)
    data = app.get(f"/streams/{key}/{init}")[2] + app.get(f"/streams/{key}/{listed[-1]}")[2]
    with av.open(io.BytesIO(data)) as container:
        extradata = container.streams.video[0].codec_context.extradata
        frame = next(container.decode(video=0))
    colour = colour_name(frame.to_ndarray(format="rgb24").mean(axis=(0, 1)))
    return colour, avc.parse_decoder_configuration(extradata).sps[0], first + len(listed) - 1


@pytest.mark.timeout(90)
def test_a_passed_through_ladder_carries_the_slate_through_a_publisher_gap_then_passes_through_again(
        ingest: Any) -> None:  # noqa: F811
    app = ingest(passthrough_heights="240", reconnect_grace=10.0, audio_languages="en,fr")
    encoder = publish_ladder(app.rtmp("gap"), 40, tones=(440, 880))
    try:
        wait_master(app, "gap", 30)
        stream = app.app.streams["gap"]

        def encoders() -> list[str]:
            return [rung["encoder"] for rung in stream.describe()["rungs"]]

        assert encoders() == ["copy", "x264", "copy"]
        wait_for(lambda: app.get("/streams/gap/media_2.m3u8")[0] == 200, 20)
        numbers = [latest_segment(app, "gap", "media_2.m3u8")[2]]
        encoder.kill()  # the encoder drops: the slate (track 0 alone) for up to 10 s
        encoder.wait()
        wait_for(lambda: encoders() == ["x264"] * 3, 10, "every rung transcoded while the slate plays")

        def shows(colour: str) -> bool:
            seen, sps, number = latest_segment(app, "gap", "media_2.m3u8")
            numbers.append(number)
            return seen == colour

        # the 240p rung, the encoder's own track until then, goes on with the slate
        wait_for(lambda: shows("slate"), 15, "the slate on the 240p rung")
        # both audio renditions go on too (the slate's silence on each; the run is not held
        # up waiting for the encoder's second audio track)
        for media in ("media_3.m3u8", "media_4.m3u8"):
            wait_for(lambda media=media: segments(app.text(f"/streams/gap/{media}").partition("/r2/")[2]), 10,
                     f"{media} in the slate's run")
            assert abs(segment_tone(app, "gap", media, last=True)) < 1, media  # silence: no tone
        encoder = publish_ladder(app.rtmp("gap"), 40)  # back within the grace, with one audio track only
        wait_for(lambda: encoders() == ["copy", "x264", "copy"], 20, "the encoder's tracks passed through again")
        wait_for(lambda: shows("other") and latest_segment(app, "gap", "media_2.m3u8")[1] ==
                 published_sps(app, "gap", 1), 20, "the encoder's own 240p track on its rung again")
        assert numbers == sorted(numbers)  # the rung's playlist never went back
        # the fr rendition goes on with the default track's audio (440 Hz) while the encoder lacks its own
        wait_for(lambda: segments(app.text("/streams/gap/media_4.m3u8").partition("/r3/")[2]), 10, "fr in run 3")
        assert abs(segment_tone(app, "gap", "media_4.m3u8", last=True) - 440) < 10
        assert stream.describe()["keyframes_aligned"] is True and stream.transcoder.restarts == 2
    finally:
        encoder.kill()
        encoder.wait()


@pytest.mark.timeout(60)
def test_the_resolution_limit_judges_every_track(ingest: Any, caplog: Any) -> None:  # noqa: F811
    app = ingest(max_resolution=400)
    line = disconnection(caplog, publish_ladder(app.rtmp("tall"), 15, smallest_first=True))  # 240p, 480p tracks
    assert "403 resolution 480p is above 400p" in line, line


def test_passthrough_heights_are_validated() -> None:
    from neurtmp.ingest import IngestConfig

    assert IngestConfig(passthrough_heights="240, 144").passthrough_height_list() == (240, 144)
    with pytest.raises(neurtmp.ConfigError, match="passthrough_heights must be heights"):
        IngestConfig(passthrough_heights="240,tall").validate()
    with pytest.raises(neurtmp.ConfigError, match="audio_languages must be language tags"):
        IngestConfig(audio_languages="en,<fr>").validate()
