"""The adaptive ladder and the one ffmpeg command that encodes it.

One ffmpeg per stream reads FLV on stdin and encodes each rung once (a split and one
scale per rung), with key frames forced at every segment boundary on every rung so that
players can switch between them; audio is encoded once. Its dash muxer writes CMAF
segments, the MPD and, beside them, the HLS playlists (master.m3u8, media_N.m3u8), so
HLS and DASH players share the same files. Those files are one encode's (one ffmpeg run's);
what players get is spliced from them by `neurtmp.ingest.session`.

A multitrack input (an encoder's own ladder, key frames aligned across its tracks) is
packaged rather than encoded where it can be: each track of a rung's height becomes
that rung with ``-c copy`` at its measured bitrate, and only the rungs no track matches
are encoded, from the highest track, with key frames where the encoder put its own
(`plan_rungs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from neurtmp.ingest.renditions import AudioRendition

__all__ = ["COPY", "EXTRA_SEGMENTS", "INIT_NAME", "LADDER", "MEDIA_NAME", "WINDOW_SEGMENTS", "Rung", "ffmpeg_command",
           "plan_rungs", "rungs_for"]

#: Frames per second of every rung.
FRAME_RATE = 30
#: AAC bitrate (kbit/s), encoded once for all rungs.
AUDIO_KBPS = 128
#: Segments listed in a live playlist or manifest (ffmpeg's -window_size).
WINDOW_SEGMENTS = 10
#: Segments kept on disk beyond those, for players a little behind (-extra_window_size).
EXTRA_SEGMENTS = 10
#: ffmpeg's names for a representation's initialization and media segments (DASH templates).
INIT_NAME = "init-$RepresentationID$.m4s"
MEDIA_NAME = "chunk-$RepresentationID$-$Number%05d$.m4s"
#: What `/streams` and gRPC call a rung's encoder when the encoder's own track is passed through.
COPY = "copy"


@dataclass(frozen=True)
class Rung:
    """One rendition: name, size and video bitrate (for a passed-through rung, the
    bitrate measured on the encoder's track).

    `copy_of`: None for a transcoded rung; else the input video stream (0, 1, ...: the
    multitrack input's tracks in track id order) packaged as it is (``-c copy``).
    """

    name: str
    width: int
    height: int
    bitrate_kbps: int
    copy_of: int | None = None


#: 1080p30 5000k, 720p30 3000k, 480p30 1500k, 360p30 800k.
LADDER = (
    Rung("1080p", 1920, 1080, 5000),
    Rung("720p", 1280, 720, 3000),
    Rung("480p", 854, 480, 1500),
    Rung("360p", 640, 360, 800),
)


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def rungs_for(input_width: int, input_height: int) -> list[Rung]:
    """The rungs for an input: never taller than it; an input below the lowest rung
    gets one rung at its own size."""
    aspect = input_width / input_height if input_height else 16 / 9
    rungs = [Rung(r.name, _even(r.height * aspect), r.height, r.bitrate_kbps)
             for r in LADDER if r.height <= input_height]
    if not rungs:
        lowest = LADDER[-1]
        bitrate = max(100, lowest.bitrate_kbps * input_height // lowest.height)
        rungs = [Rung(f"{input_height}p", _even(input_width), _even(input_height), bitrate)]
    return rungs


def plan_rungs(tracks: Sequence[tuple[int, int, int]], heights: Iterable[int] = ()) -> list[Rung]:
    """The ladder for a multitrack input whose key frames are aligned across tracks.

    Args:
        tracks: (width, height, measured kbit/s) of each input video stream, in order.
        heights: heights the operator wants passed through though the ladder has no
            such rung.

    Each track whose height is that of a rung (of `rungs_for` the highest track) or in
    `heights` becomes a passed-through rung; the rungs no track matches are transcoded
    from the highest track. Tallest first.
    """
    if not tracks:
        return []
    highest = max(range(len(tracks)), key=lambda i: tracks[i][1])
    wanted = set(heights)
    by_height: dict[int, Rung] = {}
    for rung in rungs_for(tracks[highest][0], tracks[highest][1]):
        by_height[rung.height] = rung
    for index, (width, height, kbps) in enumerate(tracks):
        matched = by_height.get(height)
        if (matched is None and height not in wanted) or (matched is not None and matched.copy_of is not None):
            continue
        name = matched.name if matched is not None else f"{height}p"
        by_height[height] = Rung(name, width, height, max(1, kbps), copy_of=index)
    return [by_height[h] for h in sorted(by_height, reverse=True)]


def _video_codec(encoder: str, preset: str, spec: str) -> list[str]:
    if encoder == "nvenc_h264":
        return [f"-c:{spec}", "h264_nvenc", f"-preset:{spec}", "p4", f"-tune:{spec}", "ll", f"-rc:{spec}", "cbr",
                f"-bf:{spec}", "0"]
    return [f"-c:{spec}", "libx264", f"-preset:{spec}", preset, f"-profile:{spec}", "main", f"-bf:{spec}", "0"]


def ffmpeg_command(ffmpeg: str, rungs: list[Rung], out_dir: str, encoder: str, preset: str,
                   segment_duration: float, audio: Sequence[AudioRendition], source: int = 0,
                   audio_inputs: Sequence[int] | None = None) -> list[str]:
    """The ffmpeg command line: FLV on stdin, progress on stdout, the ladder to `out_dir`.

    `audio`: the input's audio tracks in track id order (none: no audio), each encoded
    once into an AdaptationSet of its own (and an entry of the HLS audio group).
    `audio_inputs`: the input audio stream each rendition is encoded from (None: the
    i-th rendition from the i-th): a rendition whose track the input lacks for a while
    (the slate of a reconnect grace has one) carries the default track's audio meanwhile.

    `source`: the input video stream the transcoded rungs are scaled from (a multitrack
    input's highest track). With every rung transcoded, key frames come every
    `segment_duration`; with passed-through rungs (`Rung.copy_of`), the transcoded ones
    get theirs where the encoder's are (``-force_key_frames source``) so that all line up.
    """
    coded = [i for i, r in enumerate(rungs) if r.copy_of is None]
    copying = len(coded) < len(rungs)
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
               "-analyzeduration", "1000000", "-f", "flv", "-i", "pipe:0"]
    if coded:
        splits = "".join(f"[s{i}]" for i in coded)
        scales = ";".join(f"[s{i}]scale={rungs[i].width}:{rungs[i].height}[v{i}]" for i in coded)
        rate = "" if copying else f"fps={FRAME_RATE},"
        graph = f"[0:v:{source}]{rate}split={len(coded)}{splits};{scales}"
        command += ["-filter_complex", graph]
    for i, rung in enumerate(rungs):
        command += ["-map", f"[v{i}]" if rung.copy_of is None else f"0:v:{rung.copy_of}"]
    for index, _ in enumerate(audio):
        command += ["-map", f"0:a:{index if audio_inputs is None else audio_inputs[index]}"]
    gop = int(round(FRAME_RATE * segment_duration))
    for i, rung in enumerate(rungs):
        if rung.copy_of is not None:
            command += [f"-c:v:{i}", "copy", f"-b:v:{i}", f"{rung.bitrate_kbps}k"]
            continue
        spec = f"v:{i}" if copying else "v"
        if copying or i == 0:
            command += _video_codec(encoder, preset, spec)
        command += [f"-b:v:{i}", f"{rung.bitrate_kbps}k", f"-maxrate:v:{i}", f"{rung.bitrate_kbps * 11 // 10}k",
                    f"-bufsize:v:{i}", f"{rung.bitrate_kbps * 2}k"]
        if copying:
            command += [f"-sc_threshold:{spec}", "0", f"-force_key_frames:{spec}", "source"]
    if not copying:
        command += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
                    "-force_key_frames", f"expr:gte(t,n_forced*{segment_duration:g})"]
    if audio:
        command += ["-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2"]
    adaptation = "id=0,streams=v"
    for index, rendition in enumerate(audio):
        if rendition.language:
            command += [f"-metadata:s:a:{index}", f"language={rendition.language}"]
        adaptation += f" id={index + 1},streams={len(rungs) + index}"
    command += ["-f", "dash", "-seg_duration", f"{segment_duration:g}", "-use_template", "1", "-use_timeline", "1",
                "-window_size", str(WINDOW_SEGMENTS), "-extra_window_size", str(EXTRA_SEGMENTS), "-remove_at_exit", "0",
                "-hls_playlist", "1", "-adaptation_sets", adaptation,
                "-init_seg_name", INIT_NAME, "-media_seg_name", MEDIA_NAME,
                f"{out_dir}/manifest.mpd"]
    return command
