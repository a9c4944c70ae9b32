"""Where files start and end, timestamps in them, names, and a disk too slow: no network."""

from __future__ import annotations

import logging
import pathlib
import time

import pytest

from neurtmp import DataPacket, MessageType, Packet
from neurtmp.codec import aac, flv
from neurtmp.record import FileDone, Recording
from neurtmp.record.flv_file import FlvFile
from neurtmp.record.naming import file_stem, safe_component
from neurtmp.record.segmenter import End, Op, Segmenter, Start, Write

from ..helpers import wait_for

VIDEO_HEADER = Packet(MessageType.VIDEO, 0, flv.avc_sequence_header_tag(b"\x01\x64\x00\x0c\xff\xe0\x00"))
AUDIO_HEADER = Packet(MessageType.AUDIO, 0, aac.aac_sequence_header_tag(aac.build_audio_specific_config(44100, 2)))
METADATA = DataPacket(0, "onMetaData", [{"videocodecid": 7, "audiocodecid": 10}])


def key(timestamp: int) -> Packet:
    return Packet(MessageType.VIDEO, timestamp, flv.avc_video_tag(b"\0\0\0\1\x65", True))


def inter(timestamp: int) -> Packet:
    return Packet(MessageType.VIDEO, timestamp, flv.avc_video_tag(b"\0\0\0\1\x41", False))


def audio(timestamp: int) -> Packet:
    return Packet(MessageType.AUDIO, timestamp, aac.aac_frame_tag(b"\x21\x00"))


def run(segmenter: Segmenter, packets: list[Packet]) -> list[Op]:
    return [op for packet in packets for op in segmenter.push(packet)] + segmenter.end()


def files(ops: list[Op]) -> list[list[tuple[int, int]]]:
    """Each file's (type, timestamp) of what was written to it."""
    result: list[list[tuple[int, int]]] = []
    for op in ops:
        if isinstance(op, Start):
            result.append([])
        elif isinstance(op, Write):
            result[-1].append((op.packet.type_id, op.timestamp))
    return result


def test_a_file_starts_at_a_key_frame_with_the_headers_and_times_from_zero() -> None:
    ops = run(Segmenter(), [METADATA, VIDEO_HEADER, AUDIO_HEADER, inter(900), audio(990), key(1000), audio(1010),
                            inter(1040)])
    start = ops[0]
    assert isinstance(start, Start) and start.headers == [METADATA, VIDEO_HEADER, AUDIO_HEADER]
    assert start.has_audio and start.has_video
    assert files(ops) == [[(9, 0), (8, 10), (9, 40)]]
    assert isinstance(ops[-1], End) and ops[-1].reason == "unpublished"


def test_interval_cuts_at_the_next_key_frame_only() -> None:
    packets = [VIDEO_HEADER, key(0)] + [inter(t) for t in range(40, 1500, 40)] + [key(1500), inter(1540), key(2000)]
    ops = run(Segmenter(interval_ms=1000), packets)
    pieces = files(ops)
    assert len(pieces) == 2  # 2000 is 500 ms into the second file
    assert pieces[1] == [(9, 0), (9, 40), (9, 500)]
    assert sum(map(len, pieces)) == len(packets) - 1
    assert [op.reason for op in ops if isinstance(op, End)] == ["interval", "unpublished"]


def test_the_end_of_sequence_is_no_cut_point() -> None:
    end_of_sequence = Packet(MessageType.VIDEO, 3000, b"\x17\x02\x00\x00\x00")
    assert not end_of_sequence.is_key_frame  # it carries the key frame type, but no picture
    pieces = files(run(Segmenter(interval_ms=1000), [VIDEO_HEADER, key(0), inter(2000), end_of_sequence]))
    assert pieces == [[(9, 0), (9, 2000), (9, 3000)]]


def test_audio_only_cuts_at_any_frame_and_size_bounds_files() -> None:
    packets = [AUDIO_HEADER] + [audio(t) for t in range(0, 2000, 23)]
    ops = run(Segmenter(max_size=200), packets)
    pieces = files(ops)
    assert len(pieces) > 3 and sum(map(len, pieces)) == len(packets) - 1
    assert all(piece[0] == (8, 0) for piece in pieces)
    starts = [op for op in ops if isinstance(op, Start)]
    assert all(s.has_audio and not s.has_video for s in starts)


def test_a_new_sequence_header_starts_a_new_file() -> None:
    other = Packet(MessageType.VIDEO, 0, flv.avc_sequence_header_tag(b"\x01\x4d\x00\x1f\xff\xe0\x00"))
    ops = run(Segmenter(), [VIDEO_HEADER, key(0), VIDEO_HEADER, inter(40), other, key(80)])
    starts = [op for op in ops if isinstance(op, Start)]
    assert [s.headers for s in starts] == [[VIDEO_HEADER], [other]]
    assert [op.reason for op in ops if isinstance(op, End)] == ["new sequence header", "unpublished"]


def test_timestamps_rebase_across_the_32_bit_wrap_and_metadata_stays_at_zero() -> None:
    base = 0xFFFFFF00
    packets = [VIDEO_HEADER, key(base), audio(base - 20), METADATA, inter((base + 0x200) & 0xFFFFFFFF),
               DataPacket(base + 50, "onCuePoint", [{}])]
    pieces = files(run(Segmenter(), packets))
    assert pieces == [[(9, 0), (8, 0), (18, 0), (9, 0x200), (18, 50)]]


@pytest.mark.parametrize(("name", "safe"), [("cam", "cam"), ("cam?token=a/b", "cam"), ("my cam:1", "my_cam_1"),
                                            (".hidden", "_hidden"), ("a/b", None), ("..", None), ("a..b", None),
                                            ("a\\b", None), ("", None), ("?x=1", None)])
def test_safe_component(name: str, safe: str | None) -> None:
    assert safe_component(name) == safe


def test_file_stem_is_utc() -> None:
    assert file_stem("/rec", "live", "cam", 0.0) == "/rec/live/cam/cam-19700101-000000"


class _SlowFile(FlvFile):
    def write(self, op: Write) -> None:
        time.sleep(0.2)
        super().write(op)


def test_a_disk_that_cannot_keep_up_stops_the_recording_with_one_line(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    done: list[FileDone] = []
    recording = Recording(str(tmp_path), "live", "cam", _SlowFile, Segmenter(), 50_000, done.append, "live/cam")
    recording.push(VIDEO_HEADER)
    recording.push(key(0))
    wait_for(lambda: list(tmp_path.rglob("*.flv")), 5, "the writer opened the file (then writes slowly)")
    for i in range(1, 100):
        recording.push(Packet(MessageType.VIDEO, i * 40, flv.avc_video_tag(bytes(1000), False)))
    assert recording.failure is not None and "not keeping up" in recording.failure
    recording.end()
    wait_for(lambda: recording.finished, 5)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "recording stopped: the disk is not keeping up" in errors[0].getMessage()
    [file] = done
    assert file.reason.startswith("the disk is not keeping up")
    assert 0 < file.size < 50_000


def test_a_finished_file_is_reported_with_its_media_duration(tmp_path: pathlib.Path) -> None:
    done: list[FileDone] = []
    recording = Recording(str(tmp_path), "live", "cam", FlvFile, Segmenter(), 1 << 20, done.append, "live/cam")
    for packet in [VIDEO_HEADER, inter(960), key(1000), inter(1040), audio(1030), inter(2000)]:
        recording.push(packet)
    recording.end()
    wait_for(lambda: recording.finished, 5)
    [file] = done
    assert file.duration == 1.0 and file.reason == "unpublished"
    assert file.size == pathlib.Path(file.path).stat().st_size
    assert file.path.startswith(str(tmp_path / "live" / "cam" / "cam-"))
