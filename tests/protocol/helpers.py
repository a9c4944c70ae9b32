"""A client and a server protocol wired together in memory (h11's ConnectionPair)."""

from __future__ import annotations

from neurtmp.protocol import ClientProtocol, ServerProtocol
from neurtmp.protocol import events as ev


class ConnectionPair:
    """Moves bytes between a ClientProtocol and a ServerProtocol until both are quiet."""

    def __init__(self, server: ServerProtocol | None = None, client: ClientProtocol | None = None) -> None:
        self.server = server or ServerProtocol()
        self.client = client or ClientProtocol()
        self.server_events: list[ev.Event] = []
        self.client_events: list[ev.Event] = []

    def pump(self) -> tuple[list[ev.Event], list[ev.Event]]:
        """Exchange bytes until nothing is queued; returns (server events, client events)."""
        server_events: list[ev.Event] = []
        client_events: list[ev.Event] = []
        for _ in range(100):
            moved = False
            data = self.client.data_to_send()
            if data:
                moved = True
                server_events += self.server.receive_data(data)
            data = self.server.data_to_send()
            if data:
                moved = True
                client_events += self.client.receive_data(data)
            if not moved:
                break
        self.server_events += server_events
        self.client_events += client_events
        return server_events, client_events

    def connected(self, app: str = "live") -> ConnectionPair:
        """Handshake and connect, accepted by the server."""
        self.pump()
        self.client.connect(app, f"rtmp://127.0.0.1/{app}")
        server_events, _ = self.pump()
        connect = next(e for e in server_events if isinstance(e, ev.ConnectRequested))
        self.server.accept_connect(connect)
        self.pump()
        return self

    def stream(self) -> int:
        """createStream, accepted; returns the message stream id."""
        self.client.create_stream()
        server_events, _ = self.pump()
        request = next(e for e in server_events if isinstance(e, ev.CreateStreamRequested))
        stream_id = self.server.accept_create_stream(request)
        _, client_events = self.pump()
        result = next(e for e in client_events if isinstance(e, ev.ResultReceived))
        assert result.arguments == [float(stream_id)]
        return stream_id
