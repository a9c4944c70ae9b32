"""AMF0 (Action Message Format, version 0) encoding and decoding.

Spec: Adobe "Action Message Format -- AMF 0" (2007). Every marker is handled:
number, boolean, string, object, movieclip (reserved: refused), null, undefined,
reference, ECMA array, object end, strict array, date, long string, unsupported
(decoded as Undefined), recordset (reserved: refused), XML document, typed object,
and the AVM+ switch to AMF3.

Simplifications: the encoder never emits references (values are written in full) and
writes dates with time zone 0, which is what every current player and encoder does.
Decoding resolves references to the same Python object, so cyclic data stays cyclic.
Malformed input raises :class:`neurtmp.errors.AMFError` and nothing else.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Iterable
from typing import Any

from neurtmp.errors import AMFError, LocalProtocolError
from neurtmp.protocol import amf3
from neurtmp.protocol._buffer import ByteReader
from neurtmp.protocol.amf_types import (
    XML,
    Dictionary,
    ECMAArray,
    TypedObject,
    Undefined,
    Vector,
    XMLDocument,
    date_from_milliseconds,
    date_to_milliseconds,
)
from neurtmp.protocol.limits import MAX_AMF_DEPTH

__all__ = ["decode", "decode_all", "encode", "encode_all"]

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
MOVIECLIP = 0x04
NULL = 0x05
UNDEFINED = 0x06
REFERENCE = 0x07
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C
UNSUPPORTED = 0x0D
RECORDSET = 0x0E
XML_DOCUMENT = 0x0F
TYPED_OBJECT = 0x10
AVMPLUS = 0x11

_F64 = struct.Struct(">d")
_DATE = struct.Struct(">dh")


# -- decoding ---------------------------------------------------------------------------


class _Decoder:
    __slots__ = ("reader", "references", "depth")

    def __init__(self, reader: ByteReader) -> None:
        self.reader = reader
        self.references: list[Any] = []
        self.depth = 0

    def value(self) -> Any:
        r = self.reader
        marker = r.u8()
        if marker == NUMBER:
            return r.f64()
        if marker == BOOLEAN:
            return r.u8() != 0
        if marker == STRING:
            return r.utf8(r.u16())
        if marker == NULL:
            return None
        if marker in (UNDEFINED, UNSUPPORTED):
            return Undefined
        if marker == OBJECT:
            obj: dict[str, Any] = {}
            self.references.append(obj)
            self._members(obj)
            return obj
        if marker == ECMA_ARRAY:
            r.u32()  # the count is advisory; the members end with an object-end marker
            arr = ECMAArray()
            self.references.append(arr)
            self._members(arr)
            return arr
        if marker == STRICT_ARRAY:
            count = r.u32()
            if count > r.remaining():  # each element needs at least one byte
                raise AMFError(f"strict array claims {count} elements in {r.remaining()} bytes")
            items: list[Any] = []
            self.references.append(items)
            self._enter()
            for _ in range(count):
                items.append(self.value())
            self.depth -= 1
            return items
        if marker == TYPED_OBJECT:
            typed = TypedObject(r.utf8(r.u16()))
            self.references.append(typed)
            self._members(typed.members)
            return typed
        if marker == REFERENCE:
            index = r.u16()
            if index >= len(self.references):
                raise AMFError(f"AMF0 reference {index} to an unknown object")
            return self.references[index]
        if marker == DATE:
            milliseconds = r.f64()
            r.s16()  # time zone: reserved, should be 0
            try:
                return date_from_milliseconds(milliseconds)
            except (ValueError, OverflowError):
                raise AMFError(f"AMF0 date out of range: {milliseconds!r}") from None
        if marker == LONG_STRING:
            return r.utf8(r.u32())
        if marker == XML_DOCUMENT:
            return XMLDocument(r.utf8(r.u32()))
        if marker == AVMPLUS:
            self._enter()
            value = amf3.decode_from(r, self.depth)
            self.depth -= 1
            return value
        if marker == OBJECT_END:
            raise AMFError("unexpected AMF0 object-end marker")
        raise AMFError(f"unknown or unsupported AMF0 marker 0x{marker:02x}")

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_AMF_DEPTH:
            raise AMFError(f"AMF0 values nested deeper than {MAX_AMF_DEPTH}")

    def _members(self, target: dict[str, Any]) -> None:
        r = self.reader
        self._enter()
        while True:
            key = r.utf8(r.u16())
            if not key and r.remaining() >= 1 and r.data[r.pos] == OBJECT_END:
                r.pos += 1
                break
            target[key] = self.value()
        self.depth -= 1


def decode(data: bytes | memoryview) -> Any:
    """Decode the first AMF0 value in `data`.

    Raises:
        AMFError: the data is not valid AMF0.
    """
    return _Decoder(ByteReader(data, AMFError)).value()


def decode_all(data: bytes | memoryview) -> list[Any]:
    """Decode consecutive AMF0 values until `data` is used up.

    References are shared across the values, as in a command message body.

    Raises:
        AMFError: the data is not valid AMF0.
    """
    reader = ByteReader(data, AMFError)
    decoder = _Decoder(reader)
    values = []
    while not reader.at_end():
        values.append(decoder.value())
    return values


# -- encoding ---------------------------------------------------------------------------


def _encode_key(key: object, out: bytearray) -> None:
    raw = str(key).encode("utf-8")
    if len(raw) > 0xFFFF:
        raise LocalProtocolError("AMF0 object key longer than 65535 bytes")
    out += len(raw).to_bytes(2, "big")
    out += raw


def _encode_members(members: dict[Any, Any], out: bytearray, depth: int) -> None:
    for key, item in members.items():
        _encode_key(key, out)
        _encode_value(item, out, depth + 1)
    out += b"\x00\x00\x09"


def _encode_value(value: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_AMF_DEPTH:
        raise LocalProtocolError(f"AMF0 value nested deeper than {MAX_AMF_DEPTH} (cyclic?)")
    if value is None:
        out.append(NULL)
    elif value is Undefined:
        out.append(UNDEFINED)
    elif value is True or value is False:
        out += bytes((BOOLEAN, 1 if value else 0))
    elif isinstance(value, (int, float)):
        out.append(NUMBER)
        out += _F64.pack(float(value))
    elif isinstance(value, XMLDocument):
        raw = value.encode("utf-8")
        out.append(XML_DOCUMENT)
        out += len(raw).to_bytes(4, "big")
        out += raw
    elif isinstance(value, XML):
        out.append(AVMPLUS)
        out += amf3.encode(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += len(raw).to_bytes(2, "big")
        else:
            out.append(LONG_STRING)
            out += len(raw).to_bytes(4, "big")
        out += raw
    elif isinstance(value, ECMAArray):
        out.append(ECMA_ARRAY)
        out += len(value).to_bytes(4, "big")
        _encode_members(value, out, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_members(value, out, depth)
    elif isinstance(value, TypedObject):
        out.append(TYPED_OBJECT)
        _encode_key(value.class_name, out)
        _encode_members(value.members, out, depth)
    elif isinstance(value, (list, tuple)):
        out.append(STRICT_ARRAY)
        out += len(value).to_bytes(4, "big")
        for item in value:
            _encode_value(item, out, depth + 1)
    elif isinstance(value, _dt.datetime):
        out.append(DATE)
        out += _DATE.pack(date_to_milliseconds(value), 0)
    elif isinstance(value, (bytes, bytearray, memoryview, Vector, Dictionary)):
        out.append(AVMPLUS)
        out += amf3.encode(value)
    else:
        raise LocalProtocolError(f"cannot encode {type(value).__name__} as AMF0")


def encode(value: Any) -> bytes:
    """Encode one Python value as AMF0 (see `amf_types` for the mapping).

    Raises:
        LocalProtocolError: the value has no AMF0 form.
    """
    out = bytearray()
    _encode_value(value, out, 0)
    return bytes(out)


def encode_all(values: Iterable[Any]) -> bytes:
    """Encode several values back to back, as in a command message body."""
    out = bytearray()
    for value in values:
        _encode_value(value, out, 0)
    return bytes(out)
