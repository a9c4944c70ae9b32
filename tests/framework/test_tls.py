"""RTMPS: the server over TLS, ffmpeg and neurtmp's client as peers, certificate checks."""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
import ssl
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gevent import subprocess

import neurtmp
from neurtmp.relay import Backoff, PushRelay

from ..helpers import wait_for
from ..live.helpers import FFMPEG, ffmpeg_play_raw, ffmpeg_publish, live_server
from ..live.test_relay import send_and_receive


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: Any) -> tuple[str, str]:
    """A self-signed certificate for localhost / 127.0.0.1: (cert path, key path)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = pathlib.Path(folder / "cert.pem"), pathlib.Path(folder / "key.pem")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def tls_server(make_server: Any, certificate: tuple[str, str], plain_too: bool = False) -> tuple[Any, Any, str]:
    server, app = live_server(make_server, tls_cert=certificate[0], tls_key=certificate[1])  # plain on port 0
    server.start("127.0.0.1:0", tls=True)
    return server, app, f"rtmps://{server.get_listen_address(tls=True)}"


def trusting(certificate: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certificate[0])
    return context


def read_videos(client: neurtmp.Client, count: int) -> list[bytes]:
    videos: list[bytes] = []
    while len(videos) < count:
        event = client.read(timeout=10)
        assert event is not None
        if isinstance(event, neurtmp.events.VideoReceived):
            videos.append(event.payload)
    return videos


@pytest.mark.timeout(60)
def test_ffmpeg_publishes_over_rtmps_and_players_watch_over_tls_and_plain(make_server: Any,
                                                                          certificate: tuple[str, str]) -> None:
    server, app, base = tls_server(make_server, certificate)
    tls_player = neurtmp.connect(f"{base}/live", timeout=10, ssl_context=trusting(certificate))
    tls_player.play("cam")
    plain_player = neurtmp.connect(f"rtmp://{server.get_listen_address()}/live", timeout=10)
    plain_player.play("cam")
    ffmpeg_player = ffmpeg_play_raw(f"{base}/live/cam", 160, 120, extra=["-tls_verify", "0"])
    # ffmpeg checks certificates too: ours is self-signed, so it is refused, until told.
    refused = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc", "-t", "1",
                              "-c:v", "libx264", "-f", "flv", f"{base}/live/cam"], capture_output=True, text=True,
                             timeout=30)
    assert refused.returncode != 0 and "certificate verify failed" in refused.stderr
    publisher = ffmpeg_publish(f"{base}/live/cam", 3, codec=["-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                                                             "-pix_fmt", "yuv420p", "-tls_verify", "0"])
    try:
        videos = read_videos(tls_player, 40)
        assert videos[0][:2] == b"\x17\x00" and videos[1][:2] == b"\x17\x01"  # header, then a key frame
        assert read_videos(plain_player, 40) == videos  # the same messages through the plain listener
        assert publisher.wait(timeout=30) == 0
        frames = ffmpeg_player.stdout.read()  # type: ignore[union-attr]
        assert len(frames) // (160 * 120 * 3) >= 60  # 3 s at 25 fps, decoded by ffmpeg over rtmps://
    finally:
        publisher.kill()
        ffmpeg_player.kill()
        tls_player.close()
        plain_player.close()


@pytest.mark.timeout(30)
def test_certificates_are_checked_unless_told_not_to(make_server: Any, certificate: tuple[str, str]) -> None:
    server, app, base = tls_server(make_server, certificate)
    with pytest.raises(neurtmp.ConnectionClosed, match="not trusted"):
        neurtmp.connect(f"{base}/live", timeout=5)  # self-signed: refused by default
    neurtmp.connect(f"{base}/live", timeout=5, verify=False).close()
    neurtmp.connect(f"{base}/live", timeout=5, ssl_context=trusting(certificate)).close()
    # A client speaking plain RTMP to the TLS port is dropped with a log line, nothing else.
    with pytest.raises((neurtmp.ConnectionClosed, neurtmp.HandshakeError, OSError, TimeoutError)):
        neurtmp.connect(base.replace("rtmps://", "rtmp://") + "/live", timeout=3)
    neurtmp.connect(f"rtmp://{server.get_listen_address()}/live", timeout=5).close()  # plain still fine


@pytest.mark.timeout(60)
def test_a_push_relay_forwards_over_rtmps(make_server: Any, certificate: tuple[str, str]) -> None:
    remote, remote_app, base = tls_server(make_server, certificate)
    local, _ = live_server(make_server)
    checked = PushRelay(local, "live", "cam", f"{base}/live/strict", timeout=5, backoff=Backoff(0.2, 0.5))
    relaxed = PushRelay(local, "live", "cam", f"{base}/live/copy", timeout=5, backoff=Backoff(0.2, 0.5),
                        verify=False)
    checked.start()
    relaxed.start()
    watcher = neurtmp.connect(f"{base}/live", timeout=10, verify=False)
    watcher.play("copy")
    encoder = neurtmp.connect(f"rtmp://{local.get_listen_address()}/live", timeout=5)
    encoder.publish("cam")
    assert send_and_receive(encoder, watcher)  # header and 10 frames, byte for byte
    wait_for(lambda: relaxed.published == 1)
    assert checked.published == 0  # the self-signed remote was refused by the checking relay
    assert remote_app.registry.get("live", "strict") is None or not remote_app.registry.get("live", "strict").is_live
    encoder.close()
    watcher.close()
    checked.stop()
    relaxed.stop()


@pytest.mark.timeout(60)
def test_serve_command_with_a_certificate(certificate: tuple[str, str]) -> None:
    from ..live.test_relay import neurtmp_process

    with neurtmp_process("serve", "--tls-cert", certificate[0], "--tls-key", certificate[1],
                         "--tls-listen", "127.0.0.1:0") as (address, log):
        client = neurtmp.connect(f"rtmp://{address}/live", timeout=5)
        client.close()
    [err] = log
    assert "disconnected" in err


@pytest.mark.timeout(60)
def test_an_rtmp_proxy_forwards_over_rtmps(make_server: Any, certificate: tuple[str, str]) -> None:
    from neurtmp.proxy import ErrorType, ProxyConfig, ProxyListener, RtmpProxy

    remote, remote_app, base = tls_server(make_server, certificate)

    class Trusting(ProxyListener):
        def __init__(self, verify: bool) -> None:
            self.verify, self.port, self.errors = verify, 0, []

        def on_config(self, config: ProxyConfig) -> None:
            config.verify = self.verify

        def on_start(self, local_addr: str, local_port: int) -> None:
            self.port = local_port

        def on_error(self, error_type: ErrorType, error: BaseException) -> None:
            self.errors.append(error_type)

    strict = Trusting(verify=True)
    with RtmpProxy.create() as refused:
        refused.set_listener(strict)
        refused.start("tcp://127.0.0.1:0", f"{base}/live")
        wait_for(lambda: strict.errors == [ErrorType.REMOTE], 10)  # the self-signed remote is not trusted
    relaxed = Trusting(verify=False)
    with RtmpProxy.create() as proxy:
        proxy.set_listener(relaxed)
        proxy.start("tcp://127.0.0.1:0", f"{base}/live")
        wait_for(lambda: relaxed.port, 10)
        watcher = neurtmp.connect(f"{base}/live", timeout=10, verify=False)
        watcher.play("cam")
        encoder = neurtmp.connect(f"rtmp://127.0.0.1:{relaxed.port}/live", timeout=5)
        encoder.publish("cam")
        assert send_and_receive(encoder, watcher)  # byte for byte through the TLS hop
        encoder.close()
        watcher.close()
