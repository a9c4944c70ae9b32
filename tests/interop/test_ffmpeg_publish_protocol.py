"""The bundled ffmpeg publishes to the sans-IO server protocol driven by a blocking socket
loop (`neurtmp.probe`): the real-client check of the protocol core."""

from __future__ import annotations

import socket
import subprocess
import threading

import imageio_ffmpeg
import pytest

from neurtmp.probe import probe_connection
from neurtmp.protocol import events as ev


class ProbeServer:
    """One `probe_connection` on a loopback port, in a thread."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received: list[ev.Event] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(30)
            with conn:
                self.received.extend(probe_connection(conn))
        except BaseException as exc:  # reported by the test thread
            self.errors.append(exc)

    def finish(self) -> list[ev.Event]:
        self.thread.join(15)
        self.listener.close()
        assert not self.errors, self.errors
        return self.received


@pytest.mark.timeout(60)
def test_ffmpeg_publishes_a_test_pattern() -> None:
    server = ProbeServer()
    port = server.port
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "flv", f"rtmp://127.0.0.1:{port}/live/test",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=45)
    received = server.finish()
    assert result.returncode == 0, result.stderr

    assert isinstance(received[0], ev.HandshakeCompleted)
    assert received[0].digest  # ffmpeg uses the digest handshake
    [connect] = [e for e in received if isinstance(e, ev.ConnectRequested)]
    assert connect.app == "live"
    assert connect.tc_url == f"rtmp://127.0.0.1:{port}/live"
    assert any(isinstance(e, ev.CreateStreamRequested) for e in received)
    [publish] = [e for e in received if isinstance(e, ev.PublishRequested)]
    assert (publish.name, publish.publish_type) == ("test", "live")

    [metadata] = [e for e in received if isinstance(e, ev.DataReceived)]
    assert metadata.name == "@setDataFrame" and metadata.values[0] == "onMetaData"
    properties = metadata.values[1]
    assert (properties["width"], properties["height"], properties["framerate"]) == (320.0, 240.0, 30.0)
    assert properties["videocodecid"] == 7.0  # AVC

    videos = [e for e in received if isinstance(e, ev.VideoReceived)]
    assert len(videos) >= 40
    assert all(v.message_stream_id == publish.message_stream_id for v in videos)
    timestamps = [v.timestamp for v in videos]
    assert timestamps == sorted(timestamps)
    # First: an AVC sequence header (key frame, codec 7, packet type 0) holding an avcC record.
    first = videos[0].payload
    assert first[0] == 0x17 and first[1] == 0 and first[5] == 1  # configurationVersion 1
    assert videos[1].payload[0] == 0x17 and videos[1].payload[1] == 1  # then a key frame NALU
    audios = [e for e in received if isinstance(e, ev.AudioReceived)]
    assert audios and audios[0].payload[:2] == b"\xaf\x00"  # AAC sequence header first


@pytest.mark.timeout(60)
def test_ffmpeg_player_validates_our_digest_s1_and_s2() -> None:
    """ffmpeg as a player checks the server's S1 digest and S2 signature and gives up
    with "Server response validating failed" / "Signature mismatch" when wrong. The
    probe refuses play, so ffmpeg must fail with our StreamNotFound description."""
    server = ProbeServer()
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "debug",
        "-i", f"rtmp://127.0.0.1:{server.port}/live/nothing", "-f", "null", "-",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=45)
    received = server.finish()
    assert "Server version 4.5.0.1" in result.stderr  # it parsed our digest S1
    assert "validating failed" not in result.stderr and "Signature mismatch" not in result.stderr
    assert "nothing is not available" in result.stderr  # it got as far as our play answer
    assert received[0] == ev.HandshakeCompleted(True, bytes((9, 0, 124, 2)))
    [play] = [e for e in received if isinstance(e, ev.PlayRequested)]
    assert play.name == "nothing"
