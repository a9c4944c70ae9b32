"""Enhanced RTMP capability negotiation in connect: what a client announces is read,
the server answers with its own only to an E-RTMP client."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from neurtmp.protocol import Capabilities, CapsEx, FourCcInfo
from neurtmp.protocol import events as ev
from tests.protocol import ertmp_ffmpeg as ff

from .helpers import ConnectionPair

SERVER = Capabilities.of(["avc1", "hvc1"], video={"*": FourCcInfo.CAN_FORWARD}, audio={"*": FourCcInfo.CAN_FORWARD},
                         caps_ex=CapsEx.MULTITRACK | CapsEx.MOD_EX)


def _connect(**fields: Any) -> tuple[ev.ConnectRequested, ev.ResultReceived]:
    pair = ConnectionPair()
    pair.pump()
    pair.client.connect("live", "rtmp://h/live", **fields)
    [connect] = [e for e in pair.pump()[0] if isinstance(e, ev.ConnectRequested)]
    pair.server.accept_connect(connect, capabilities=SERVER)
    [result] = [e for e in pair.pump()[1] if isinstance(e, ev.ResultReceived)]
    return connect, result


def test_a_v2_client_s_maps_and_caps_ex_are_read() -> None:
    mine = Capabilities.of(video={"*": FourCcInfo.CAN_FORWARD, "hvc1": FourCcInfo.CAN_DECODE},
                           audio={"Opus": FourCcInfo.CAN_DECODE | FourCcInfo.CAN_ENCODE},
                           caps_ex=CapsEx.RECONNECT | CapsEx.MULTITRACK | CapsEx.MOD_EX | CapsEx.TIMESTAMP_NANO_OFFSET)
    connect, _ = _connect(**mine.to_object())
    caps = connect.capabilities
    assert caps.announced and caps.multitrack and caps.reconnect and caps.mod_ex
    assert caps.caps_ex == 15
    assert caps.video_info("hvc1") == FourCcInfo.CAN_DECODE | FourCcInfo.CAN_FORWARD  # its own and the wildcard's
    assert caps.can_take_video("vvc1")  # forwarded: "*"
    assert caps.can_take_audio("Opus") and not caps.can_take_audio("mp4a")
    assert caps.audio_info("Opus") == FourCcInfo.CAN_DECODE | FourCcInfo.CAN_ENCODE
    assert caps == mine


def test_the_server_answers_an_e_rtmp_client_with_its_own_capabilities() -> None:
    _, result = _connect(fourCcList=["hvc1"], capsEx=2.0)
    props = result.command_object
    assert props["fourCcList"] == ["avc1", "hvc1"]
    assert props["videoFourCcInfoMap"] == {"*": 4.0} and props["audioFourCcInfoMap"] == {"*": 4.0}
    assert props["capsEx"] == 6.0
    assert props["fmsVer"] and props["capabilities"]  # the legacy fields stay
    assert result.arguments[0]["code"] == "NetConnection.Connect.Success"
    assert Capabilities.from_object(props) == SERVER


def test_a_legacy_client_gets_the_legacy_result() -> None:
    connect, result = _connect()
    assert not connect.capabilities.announced
    assert connect.capabilities == Capabilities()
    assert not {"fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap", "capsEx"} & set(result.command_object)


def test_ffmpeg9_announces_nothing_by_default() -> None:
    caps = ev.ConnectRequested(1.0, ff.CONNECT_PLAIN).capabilities
    assert not caps.announced and caps.fourcc_list is None and not caps.multitrack


def test_ffmpeg9_with_enhanced_codecs_announces_a_fourcc_list_only_no_maps_no_caps_ex() -> None:
    caps = ev.ConnectRequested(1.0, ff.CONNECT_ENHANCED_CODECS).capabilities
    assert caps.announced
    assert caps.fourcc_list == ("hvc1", "av01", "vp09", "avc1", "mp4a", "Opus", "fLaC", "ac-3", "ec-3", ".mp3")
    assert not caps.video_fourcc_info and not caps.audio_fourcc_info and caps.caps_ex == 0
    assert not caps.multitrack  # (it publishes multitrack all the same)
    assert caps.can_take_video("hvc1") and caps.can_take_audio("Opus") and not caps.can_take_video("vvc1")


def test_a_wildcard_fourcc_list_takes_anything() -> None:
    caps = Capabilities.from_object({"fourCcList": ["*"]})
    assert caps.can_take_video("vvc1") and caps.can_take_audio("ec-3")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap", "capsEx", "app"]),
                       st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                                    lambda inner: st.lists(inner, max_size=4)
                                    | st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=10)))
def test_any_command_object_gives_capabilities(obj: dict[str, Any]) -> None:
    caps = Capabilities.from_object(obj)
    again = Capabilities.from_object(caps.to_object())
    assert again.caps_ex == caps.caps_ex and again.video_fourcc_info == caps.video_fourcc_info
    caps.can_take_video("avc1")
