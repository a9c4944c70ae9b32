"""Media payloads the bundled ffmpeg 9.0.2 (libavformat 63.1) sends when it publishes
Enhanced RTMP v2 multitrack, captured from its RTMP output with a probe server.

Source: 160x120 testsrc at 10 fps (libx264, GOP 5, no B-frames) and a 440 Hz sine
(AAC 32k), muxed to NUT, then published with `-c copy -f flv rtmp://...`:

- TWO_H264: `-map 0:v -map 0:v -map 0:a`. The first video stream goes out as legacy
  AVC (FLV codec 7), the second as Multitrack OneTrack "avc1" track 1 (SequenceStart,
  then CodedFramesX: no composition time). The AAC stream is legacy AAC. At the end
  both video streams get a legacy AVC end of sequence (`17 02 00 00 00`, twice, no
  track id).
- AAC_OPUS: `-map 0:v -map 0:a -map 0:a -c:a:1 libopus`. The AAC stream is legacy, the
  Opus one Multitrack OneTrack track 1 (SequenceStart with OpusHead,
  MultichannelConfig, CodedFrames).
- H264_HEVC: `-map 0:v -map 0:v -map 0:a -c:v:1 libx265 -c:a libopus`. The HEVC stream
  is Multitrack OneTrack "hvc1" track 1 (CodedFrames with a 200 ms composition time);
  its HDR metadata goes out single-track (no track id) as a Metadata packet with the
  command frame type; the only audio, Opus, is single-track E-RTMP (track 0).

ffmpeg never sends ManyTracks or ManyTracksManyCodecs (one stream per message), nor
ModEx. Long payloads are cut to their first 64 bytes (enough for the header; OneTrack
bodies run to the end of the message, so a cut one still parses).

What ffmpeg 9 puts in its connect command object: nothing of E-RTMP by default;
with `-rtmp_enhanced_codecs hvc1,...` a `fourCcList` (strict array) of exactly those
codecs, and no `videoFourCcInfoMap`, `audioFourCcInfoMap` or `capsEx`.
"""

CONNECT_PLAIN = {"app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; Lavf63.1.102)",
                 "tcUrl": "rtmp://127.0.0.1:58445/live"}
CONNECT_ENHANCED_CODECS = {
    "app": "live",
    "fourCcList": ["hvc1", "av01", "vp09", "avc1", "mp4a", "Opus", "fLaC", "ac-3", "ec-3", ".mp3"],
    "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; Lavf63.1.102)",
    "tcUrl": "rtmp://127.0.0.1:35023/live",
}

TWO_H264_LEGACY_SEQUENCE_START = bytes.fromhex(
    "170000000001f4000affe1001a67f4000a919640a11f89c044000003000400000300503c48992001000668ebc3c44844"
    "fff8f800"
)
TWO_H264_TRACK1_SEQUENCE_START = bytes.fromhex(
    "9600617663310101f4000affe1001a67f4000a919640a11f89c044000003000400000300503c48992001000668ebc3c4"
    "4844fff8f800"
)
TWO_H264_LEGACY_KEY_FRAME = bytes.fromhex(  # first 64 of 2325 bytes
    "17010000000000025e0605ffff5adc45e9bde6d948b7962cd820d923eeef78323634202d20636f726520313635202d20"
    "482e3236342f4d5045472d3420415643"
)
TWO_H264_TRACK1_KEY_FRAME = bytes.fromhex(  # first 64 of 2327 bytes
    "960361766331010000025e0605ffff5adc45e9bde6d948b7962cd820d923eeef78323634202d20636f72652031363520"
    "2d20482e3236342f4d5045472d342041"
)
TWO_H264_TRACK1_INTER_FRAME = bytes.fromhex(  # first 64 of 282 bytes
    "a60361766331010000010f419a3b10fffe4be7ebcfb9c6c33ff5001e9e5f9cc66669057f2743777e97f8f9caef1e5df0"
    "fa6ef86575fb717a92acbd463c7ad5e7"
)
TWO_H264_LEGACY_AAC_SEQUENCE_START = bytes.fromhex(
    "af00120856e500"
)
AAC_OPUS_TRACK1_SEQUENCE_START = bytes.fromhex(
    "95004f707573014f707573486561640101380180bb0000000000"
)
AAC_OPUS_TRACK1_MULTICHANNEL_CONFIG = bytes.fromhex(
    "95044f70757301010100000004"
)
AAC_OPUS_TRACK1_CODED_FRAMES = bytes.fromhex(  # first 64 of 285 bytes
    "95014f70757301f87fbc1f84178dc42e572456f24ea11f5c49c4208815210c57954ef52da6476349418f99eef64a33a1"
    "6dfac374a0723b9bc28fe113c703ba95"
)
H264_HEVC_TRACK1_SEQUENCE_START = bytes.fromhex(  # first 64 of 2448 bytes
    "960068766331010104080000009e08000000001ef000fcfff8f800000f04200001001740010c01ffff0408000003009e"
    "0800000300001e959809210001002942"
)
H264_HEVC_TRACK1_KEY_FRAME = bytes.fromhex(  # first 64 of 1469 bytes
    "960168766331010000c8000005af2801af1142a958af2f59544f1584c3ff79b2b215dae02e06a3dd9edba708ee22333f"
    "3e558f31561cbe1b8a5f8eb8dffef375"
)
H264_HEVC_TRACK1_INTER_FRAME = bytes.fromhex(  # first 64 of 135 bytes
    "a60168766331010000c8000000790201d0097e10c62289309973810778d6e59c14e86ba5968a6e49926b9eb93e18d002"
    "0a9ca001df1cb51313006197093ca5f3"
)
H264_HEVC_METADATA = bytes.fromhex(
    "d468766331020009636f6c6f72496e666f03000b636f6c6f72436f6e66696703000009000009"
)
OPUS_SEQUENCE_START = bytes.fromhex(
    "904f7075734f707573486561640101380180bb0000000000"
)
OPUS_MULTICHANNEL_CONFIG = bytes.fromhex(
    "944f707573010100000004"
)
OPUS_CODED_FRAMES = bytes.fromhex(  # first 64 of 283 bytes
    "914f707573f87fbc1f84178dc42e572456f24ea11f5c49c4208815210c57954ef52da6476349418f99eef64a33a16dfa"
    "c374a0723b9bc28fe113c703ba9530bd"
)
