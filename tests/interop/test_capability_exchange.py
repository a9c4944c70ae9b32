"""The Enhanced RTMP capability exchange in `connect` against every real client we have:
what each announces (`Connection.client_capabilities`, the raw command object) and what
neurtmp answers in the connect `_result` (server capabilities only to a client that
announced E-RTMP; a legacy client gets the legacy answer, nothing more).

What was seen (and is asserted below):

| client                                      | announces                  | neurtmp answers        |
|---------------------------------------------|----------------------------|------------------------|
| ffmpeg 9 publisher                          | nothing (FMLE/3.0 flashVer)| legacy `_result`       |
| ffmpeg 9 publisher, -rtmp_enhanced_codecs   | fourCcList [hvc1, av01]    | + fourCcList, maps,    |
|                                             | (no capsEx, no info maps)  |   capsEx 15            |
| ffmpeg 9 player                             | nothing (legacy codec bits)| legacy `_result`       |
| rtmpdump (librtmp)                          | nothing (legacy codec bits)| legacy `_result`       |
| neurtmp Client(capabilities=...)            | what it was given          | + server capabilities  |

(`-rtmp_enhanced_codecs` is an output option of ffmpeg's rtmp protocol: a player cannot
send it.) GStreamer and a system ffmpeg (Debian's: 5 or later) are checked when installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from gevent import subprocess

import neurtmp
from neurtmp import Capabilities, CapsEx, FourCcInfo
from neurtmp.protocol.connection import ServerProtocol

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import FFMPEG

RTMPDUMP = shutil.which("rtmpdump")
GST_LAUNCH = shutil.which("gst-launch-1.0")
SYSTEM_FFMPEG = "/usr/bin/ffmpeg" if Path("/usr/bin/ffmpeg").exists() else None

#: The legacy connect `_result` properties neurtmp sends (FMS-compatible).
LEGACY_ANSWER = {"fmsVer", "capabilities", "mode"}
#: The fields a server adds for an E-RTMP client.
ERTMP_FIELDS = {"fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap", "capsEx"}


class Exchange:
    """A server recording every connect: the client's capabilities and command object,
    and the properties of the connect `_result` it answered with."""

    def __init__(self, make_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.announced: list[Capabilities] = []
        self.commands: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        original = ServerProtocol.send_result
        answers = self.answers

        def recording_send_result(protocol: Any, transaction_id: Any, properties: Any, *args: Any,
                                  **kwargs: Any) -> Any:
            if isinstance(properties, dict) and "fmsVer" in properties:  # the connect _result
                answers.append(dict(properties))
            return original(protocol, transaction_id, properties, *args, **kwargs)

        monkeypatch.setattr(ServerProtocol, "send_result", recording_send_result)

        def on_connect(is_create: bool, connection: neurtmp.Connection, args: Any, user: Any) -> bool:
            if is_create:
                self.announced.append(connection.client_capabilities)
                self.commands.append(connection.get_connect_arguments())
            return True

        self.server = make_server(on_connect)

    def url(self, path: str = "live/exchange") -> str:
        return url(self.server, path)

    def run(self, command: list[str]) -> tuple[Capabilities, dict[str, Any], dict[str, Any]]:
        """Run a client until its connect was answered, then stop it; (what it announced,
        its command object, our answer's properties)."""
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: self.answers or process.poll() is not None, 20, f"{command[0]} connects")
        finally:
            if process.poll() is None:
                process.kill()
            _, err = process.communicate(timeout=10)
        assert len(self.announced) == 1 and len(self.answers) == 1, err
        return self.announced[0], self.commands[0], self.answers[0]


def ffmpeg_publisher(binary: str, target: str, *extra: str) -> list[str]:
    return [binary, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
            "-t", "5", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra, "-f", "flv", target]


def ffmpeg_player(binary: str, source: str) -> list[str]:
    return [binary, "-hide_banner", "-loglevel", "error", "-i", source, "-t", "1", "-f", "null", "-"]


def assert_legacy(announced: Capabilities, answer: dict[str, Any]) -> None:
    assert announced == Capabilities() and not announced.announced
    assert set(answer) == LEGACY_ANSWER, answer
    assert not ERTMP_FIELDS & set(answer)


def assert_server_caps(answer: dict[str, Any], server: neurtmp.Server) -> None:
    assert set(answer) == LEGACY_ANSWER | ERTMP_FIELDS, answer
    theirs = Capabilities.from_object(answer)
    assert theirs.fourcc_list == tuple(server.options.fourcc_list)
    assert theirs.video_info("vvc1") == FourCcInfo.CAN_FORWARD and theirs.audio_info("Opus") == FourCcInfo.CAN_FORWARD
    assert theirs.caps_ex == CapsEx.RECONNECT | CapsEx.MULTITRACK | CapsEx.MOD_EX | CapsEx.TIMESTAMP_NANO_OFFSET


@pytest.fixture
def exchange(make_server: Any, monkeypatch: pytest.MonkeyPatch) -> Exchange:
    return Exchange(make_server, monkeypatch)


@pytest.mark.timeout(40)
def test_ffmpeg_9_publisher_announces_nothing_and_gets_the_legacy_answer(exchange: Exchange) -> None:
    announced, command, answer = exchange.run(ffmpeg_publisher(FFMPEG, exchange.url()))
    assert_legacy(announced, answer)
    assert command["flashVer"].startswith("FMLE/3.0") and not ERTMP_FIELDS & set(command)


@pytest.mark.timeout(40)
def test_ffmpeg_9_with_enhanced_codecs_announces_fourcc_list_hvc1_av01(exchange: Exchange) -> None:
    """An E-RTMP v1 client (a `fourCcList`, nothing else): neurtmp answers with its codecs,
    the forward-anything info maps and its capsEx."""
    announced, command, answer = exchange.run(
        ffmpeg_publisher(FFMPEG, exchange.url(), "-rtmp_enhanced_codecs", "hvc1,av01"))
    assert announced.announced and announced.fourcc_list == ("hvc1", "av01")
    assert not announced.video_fourcc_info and not announced.audio_fourcc_info and announced.caps_ex == 0
    assert command["fourCcList"] == ["hvc1", "av01"] and "capsEx" not in command
    assert_server_caps(answer, exchange.server)


@pytest.mark.timeout(40)
def test_ffmpeg_9_player_announces_nothing(exchange: Exchange) -> None:
    """ffmpeg 9 plays E-RTMP (hvc1, Multitrack) but says nothing of it in connect."""
    announced, command, answer = exchange.run(ffmpeg_player(FFMPEG, exchange.url()))
    assert_legacy(announced, answer)
    assert command["videoCodecs"] == 252 and "audioCodecs" in command and not ERTMP_FIELDS & set(command)


@pytest.mark.skipif(RTMPDUMP is None, reason="rtmpdump is not installed (Debian: apt-get install rtmpdump)")
@pytest.mark.timeout(40)
def test_rtmpdump_announces_nothing(exchange: Exchange) -> None:
    announced, command, answer = exchange.run(
        [RTMPDUMP or "rtmpdump", "-q", "-r", exchange.url(), "--live", "--stop", "1", "-m", "5", "-o", "/dev/null"])
    assert_legacy(announced, answer)
    assert command["flashVer"].startswith("LNX") and not ERTMP_FIELDS & set(command)


@pytest.mark.skipif(SYSTEM_FFMPEG is None, reason="no system ffmpeg (/usr/bin/ffmpeg) is installed")
@pytest.mark.parametrize("role", ["publisher", "player"])
@pytest.mark.timeout(40)
def test_system_ffmpeg_announces_nothing_without_enhanced_codecs(exchange: Exchange, role: str) -> None:
    binary = SYSTEM_FFMPEG or "ffmpeg"
    command = (ffmpeg_publisher(binary, exchange.url()) if role == "publisher"
               else ffmpeg_player(binary, exchange.url()))
    announced, _, answer = exchange.run(command)
    assert_legacy(announced, answer)


@pytest.mark.skipif(GST_LAUNCH is None, reason="GStreamer is not installed (no gst-launch-1.0)")
@pytest.mark.parametrize("role", ["rtmp2sink_publisher", "rtmp2src_player"])
@pytest.mark.timeout(40)
def test_gstreamer_announces_nothing(exchange: Exchange, role: str) -> None:
    launch = GST_LAUNCH or "gst-launch-1.0"
    if role == "rtmp2sink_publisher":
        command = [launch, "-q", "videotestsrc", "num-buffers=100", "!", "x264enc", "tune=zerolatency", "!",
                   "flvmux", "streamable=true", "!", "rtmp2sink", f"location={exchange.url()}"]
    else:
        command = [launch, "-q", "rtmp2src", f"location={exchange.url()}", "!", "fakesink"]
    announced, _, answer = exchange.run(command)
    assert_legacy(announced, answer)


@pytest.mark.timeout(30)
def test_neurtmp_client_with_capabilities_gets_server_caps_and_without_gets_the_legacy_answer(
        exchange: Exchange) -> None:
    mine = Capabilities.of(["hvc1"], video={"*": FourCcInfo.CAN_DECODE}, caps_ex=CapsEx.MULTITRACK)
    with neurtmp.connect(exchange.url("live"), timeout=10, capabilities=mine) as client:
        assert exchange.announced == [mine]
        assert client.server_capabilities.announced and client.server_capabilities.multitrack
        assert_server_caps(exchange.answers[0], exchange.server)
    with neurtmp.connect(exchange.url("live"), timeout=10) as client:
        assert exchange.announced[1] == Capabilities() and not client.server_capabilities.announced
        assert set(exchange.answers[1]) == LEGACY_ANSWER
