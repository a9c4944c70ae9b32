"""Publishers the transcoder cannot serve: they get a status saying why, and others carry on."""

from __future__ import annotations

import logging
import os
import pathlib
import random
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

import neurtmp
from neurtmp.ingest.transcoder import MAX_FAILURES, MAX_LOGGED_ERRORS

from ..conftest import url
from ..helpers import wait_for
from ..media import encode_h264
from .test_ingest import ffmpeg_children, ingest, publish, read_status, wait_master  # noqa: F401 (the fixture)

#: 320x240 H.264: a real sequence header and one second of frames (a key frame first).
HEADER, FRAMES = encode_h264(30, 320, 240)


def garbage(index: int, rng: random.Random) -> bytes:
    """An AVC key frame tag body whose NAL units are noise: nothing a decoder can use."""
    return bytes([0x17, 1, 0, 0, 0]) + rng.randbytes(1500)


class Sender:
    """Publishes `key` with our client and sends video at 30 fps until stopped."""

    def __init__(self, target: str, key: str, frames: Any) -> None:
        self.client = neurtmp.connect(target, timeout=10)
        self.client.publish(key)
        self.client.send_video(HEADER.data, 0)
        self.greenlet = gevent.spawn(self._send, frames)

    def _send(self, frames: Any) -> None:
        index = 0
        try:
            while True:
                self.client.send_video(frames(index), 33 * index)
                index += 1
                gevent.sleep(1 / 30)
        except (neurtmp.ConnectionClosed, OSError):
            pass  # the server closed the connection

    def close(self) -> None:
        self.greenlet.kill()
        self.client.close()


@pytest.fixture
def senders() -> Iterator[Any]:
    made: list[Sender] = []

    def make(target: str, key: str, frames: Any) -> Sender:
        made.append(Sender(target, key, frames))
        return made[-1]

    yield make
    for sender in made:
        sender.close()


def failed_status(client: neurtmp.Client) -> neurtmp.events.StatusReceived:
    """The first status after Publish.Start."""
    status = read_status(client, timeout=40)
    while status.code == "NetStream.Publish.Start":
        status = read_status(client, timeout=40)
    return status


@pytest.mark.timeout(90)
def test_a_publisher_of_undecodable_video_is_refused_after_a_few_failures(ingest: Any, senders: Any,  # noqa: F811
                                                                         caplog: Any) -> None:
    app = ingest(stall_timeout=1.0)
    rng = random.Random(7)
    with caplog.at_level(logging.WARNING):
        sender = senders(url(app.server, "live"), "noise", lambda i: garbage(i, rng))
        wait_for(lambda: "noise" in app.app.streams, 5)
        transcoder = app.app.streams["noise"].transcoder
        status = failed_status(sender.client)
    assert (status.code, status.level, status.description) == ("NetStream.Publish.Failed", "error",
                                                                "400 undecodable video")
    assert transcoder.restarts == MAX_FAILURES - 1 and transcoder.status == "failed"
    wait_for(lambda: "noise" not in app.app.streams and not ffmpeg_children(), 15)
    given_up = [r.message for r in caplog.records if "giving up" in r.message]
    assert len(given_up) == 1 and "noise" in given_up[0] and "400 undecodable video" in given_up[0], given_up
    # ffmpeg complains about every frame; the log gets a bounded number of its lines.
    relayed = [r for r in caplog.records if r.message.startswith("noise: ffmpeg: ")]
    assert len(relayed) <= MAX_FAILURES * (MAX_LOGGED_ERRORS + 1), len(relayed)


@pytest.mark.timeout(90)
def test_a_transcoder_that_cannot_start_fails_the_publish_and_others_carry_on(ingest: Any, senders: Any,  # noqa: F811
                                                                             caplog: Any) -> None:
    app = ingest()
    # The stream's folder cannot be made: a regular file holds its name.
    pathlib.Path(app.config.output_dir, "blocked").write_bytes(b"not a folder")
    with caplog.at_level(logging.WARNING):
        sender = senders(url(app.server, "live"), "blocked", lambda i: FRAMES[i % len(FRAMES)].data)
        status = failed_status(sender.client)
    assert (status.code, status.level) == ("NetStream.Publish.Failed", "error")
    assert status.description.startswith("500 transcoder cannot start: "), status.description
    retries = [r.message for r in caplog.records if "blocked: ffmpeg could not start" in r.message]
    assert len(retries) == MAX_FAILURES and "restarting in" in retries[0] and "giving up" in retries[-1], retries
    wait_for(lambda: "blocked" not in app.app.streams, 10)
    # The server carries on: another stream is transcoded and served.
    encoder = publish(app.rtmp("fine"), "320x240", 6)
    try:
        master = wait_master(app, "fine")
        assert "RESOLUTION=320x240" in master
    finally:
        encoder.kill()
        encoder.wait()
    assert os.path.isfile(os.path.join(app.config.output_dir, "blocked"))
