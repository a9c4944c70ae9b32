"""The form fields a hook gets, in nginx-rtmp's names.

Every call: ``call`` (connect, publish, play, publish_done, play_done, record_done),
``addr`` (the client's IP), ``clientid``, ``app``, ``flashver``, ``swfurl``, ``tcurl``,
``pageurl``. Stream calls add ``name`` (without its query string) and, for publishes,
``type`` (live, record, append); then the query arguments of the stream name (of the app
name, for connect) as they came, e.g. ``key=...``. An argument never replaces a standard
field of the same name.
"""

from __future__ import annotations

from neurtmp import Connection, Stream
from neurtmp.access.rules import parse_peer_host
from neurtmp.access.tokens import split_name

__all__ = ["connection_fields", "http_fields", "stream_fields"]

#: Connect-object keys sent, by form field name.
_CONNECT_KEYS = {"flashver": "flashVer", "swfurl": "swfUrl", "tcurl": "tcUrl", "pageurl": "pageUrl"}


def connection_fields(call: str, connection: Connection) -> list[tuple[str, str]]:
    """The fields of a connect call (the app name's query arguments included)."""
    fields = _base(call, connection)
    return _with_arguments(fields, split_name(connection.app)[1])


def stream_fields(call: str, stream: Stream, **extra: str) -> list[tuple[str, str]]:
    """The fields of a stream's call: base fields, name, type, `extra`, query arguments."""
    connection = stream.get_connection()
    name, arguments = split_name(stream.get_stream_name())
    fields = [*_base(call, connection), ("name", name)]
    if call.startswith("publish"):
        fields.append(("type", stream.publish_type))
    fields.extend(extra.items())
    return _with_arguments(fields, arguments)


def http_fields(call: str, peer: str, client_id: str, app: str, name_and_query: str, url: str
                ) -> list[tuple[str, str]]:
    """The fields of an HTTP-FLV player's call: the same names, `tcurl` being the URL
    asked for (flashver, swfurl and pageurl empty)."""
    address = parse_peer_host(peer)
    name, arguments = split_name(name_and_query)
    fields = [("call", call), ("addr", str(address) if address is not None else peer.rpartition(":")[0]),
              ("clientid", client_id), ("app", app), ("flashver", ""), ("swfurl", ""), ("tcurl", url),
              ("pageurl", ""), ("name", name)]
    return _with_arguments(fields, arguments)


def _base(call: str, connection: Connection) -> list[tuple[str, str]]:
    peer = connection.get_peer_address()
    address = parse_peer_host(peer)
    connect = connection.get_connect_arguments()
    fields = [("call", call), ("addr", str(address) if address is not None else peer.rpartition(":")[0]),
              ("clientid", str(connection.connection_id)), ("app", connection.app_name)]
    fields.extend((field, str(connect.get(key) or "")) for field, key in _CONNECT_KEYS.items())
    return fields


def _with_arguments(fields: list[tuple[str, str]], arguments: dict[str, str]) -> list[tuple[str, str]]:
    taken = {name for name, _ in fields}
    return [*fields, *((name, value) for name, value in arguments.items() if name not in taken)]
