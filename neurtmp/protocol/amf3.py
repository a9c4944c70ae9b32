"""AMF3 (Action Message Format, version 3) encoding and decoding.

Spec: Adobe "AMF 3 Specification" (2013). Every marker is handled: undefined, null,
false, true, integer (U29, sign-extended), double, string, XMLDocument, date, array
(dense and associative parts), object (sealed and dynamic members, trait references,
and the two externalizable Flex wrappers every server meets: ArrayCollection and
ObjectProxy), XML, ByteArray, the four vector kinds and dictionary. String, object and
trait references are resolved.

The encoder writes string and trait references (they cost nothing to find) but no
object references: shared or cyclic Python objects are written out in full, and cycles
are refused by the depth limit. Malformed input raises :class:`neurtmp.errors.AMFError`.
"""

from __future__ import annotations

import datetime as _dt
import struct
from typing import Any

from neurtmp.errors import AMFError, LocalProtocolError
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

__all__ = ["decode", "decode_from", "encode"]

UNDEFINED = 0x00
NULL = 0x01
FALSE = 0x02
TRUE = 0x03
INTEGER = 0x04
DOUBLE = 0x05
STRING = 0x06
XML_DOC = 0x07
DATE = 0x08
ARRAY = 0x09
OBJECT = 0x0A
XML_MARKER = 0x0B
BYTE_ARRAY = 0x0C
VECTOR_INT = 0x0D
VECTOR_UINT = 0x0E
VECTOR_DOUBLE = 0x0F
VECTOR_OBJECT = 0x10
DICTIONARY = 0x11

INTEGER_MIN = -(1 << 28)
INTEGER_MAX = (1 << 28) - 1

_VECTOR_KINDS = {VECTOR_INT: "int", VECTOR_UINT: "uint", VECTOR_DOUBLE: "double", VECTOR_OBJECT: "object"}
_VECTOR_MARKERS = {kind: marker for marker, kind in _VECTOR_KINDS.items()}
_VECTOR_ITEM = {"int": struct.Struct(">i"), "uint": struct.Struct(">I"), "double": struct.Struct(">d")}

#: Externalizable classes whose body is simply one more AMF3 value.
_WRAPPER_CLASSES = frozenset({"flex.messaging.io.ArrayCollection", "flex.messaging.io.ObjectProxy"})


class _Traits:
    __slots__ = ("class_name", "dynamic", "externalizable", "sealed")

    def __init__(self, class_name: str, dynamic: bool, externalizable: bool, sealed: list[str]) -> None:
        self.class_name = class_name
        self.dynamic = dynamic
        self.externalizable = externalizable
        self.sealed = sealed


# -- decoding ---------------------------------------------------------------------------


class _Decoder:
    __slots__ = ("r", "strings", "objects", "traits", "depth")

    def __init__(self, reader: ByteReader, depth: int = 0) -> None:
        self.r = reader
        self.strings: list[str] = []
        self.objects: list[Any] = []
        self.traits: list[_Traits] = []
        self.depth = depth

    def u29(self) -> int:
        r = self.r
        result = 0
        for _ in range(3):
            b = r.u8()
            result = (result << 7) | (b & 0x7F)
            if not b & 0x80:
                return result
        return (result << 8) | r.u8()

    def string(self) -> str:
        header = self.u29()
        if not header & 1:
            return self._string_ref(header >> 1)
        text = self.r.utf8(header >> 1)
        if text:
            self.strings.append(text)
        return text

    def _string_ref(self, index: int) -> str:
        if index >= len(self.strings):
            raise AMFError(f"AMF3 string reference {index} out of range")
        return self.strings[index]

    def _object_ref(self, index: int) -> Any:
        if index >= len(self.objects):
            raise AMFError(f"AMF3 object reference {index} out of range")
        return self.objects[index]

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_AMF_DEPTH:
            raise AMFError(f"AMF3 values nested deeper than {MAX_AMF_DEPTH}")

    def value(self) -> Any:
        marker = self.r.u8()
        if marker == UNDEFINED:
            return Undefined
        if marker == NULL:
            return None
        if marker == FALSE:
            return False
        if marker == TRUE:
            return True
        if marker == INTEGER:
            n = self.u29()
            return n - (1 << 29) if n & (1 << 28) else n
        if marker == DOUBLE:
            return self.r.f64()
        if marker == STRING:
            return self.string()
        reader = self.COMPLEX.get(marker)
        if reader is None:
            raise AMFError(f"unknown AMF3 marker 0x{marker:02x}")
        header = self.u29()
        if not header & 1:
            return self._object_ref(header >> 1)
        self._enter()
        value = reader(self, header >> 1, marker)
        self.depth -= 1
        return value

    def _xml(self, length: int, marker: int) -> Any:
        text = self.r.utf8(length)
        value = XMLDocument(text) if marker == XML_DOC else XML(text)
        self.objects.append(value)
        return value

    def _date(self, _unused: int, _marker: int) -> Any:
        milliseconds = self.r.f64()
        try:
            value = date_from_milliseconds(milliseconds)
        except (ValueError, OverflowError):
            raise AMFError(f"AMF3 date out of range: {milliseconds!r}") from None
        self.objects.append(value)
        return value

    def _bytes(self, length: int, _marker: int) -> Any:
        value = self.r.read(length)
        self.objects.append(value)
        return value

    def _array(self, dense_count: int, _marker: int) -> Any:
        assoc = ECMAArray()
        index = len(self.objects)
        self.objects.append(assoc)
        while True:
            key = self.string()
            if not key:
                break
            assoc[key] = self.value()
        if dense_count > self.r.remaining():
            raise AMFError(f"AMF3 array claims {dense_count} elements in {self.r.remaining()} bytes")
        dense: list[Any] = []
        if not assoc:
            self.objects[index] = dense
        for _ in range(dense_count):
            dense.append(self.value())
        if not assoc:
            return dense
        for i, item in enumerate(dense):
            assoc[str(i)] = item
        return assoc

    def _read_traits(self, header: int) -> _Traits:
        if not header & 1:
            index = header >> 1
            if index >= len(self.traits):
                raise AMFError(f"AMF3 traits reference {index} out of range")
            return self.traits[index]
        externalizable = bool(header & 2)
        dynamic = bool(header & 4)
        sealed_count = header >> 3
        class_name = self.string()
        if sealed_count > self.r.remaining():
            raise AMFError(f"AMF3 traits claim {sealed_count} sealed members in {self.r.remaining()} bytes")
        sealed = [self.string() for _ in range(sealed_count)]
        traits = _Traits(class_name, dynamic, externalizable, sealed)
        self.traits.append(traits)
        return traits

    def _object(self, header: int, _marker: int) -> Any:
        traits = self._read_traits(header)
        if traits.externalizable:
            if traits.class_name not in _WRAPPER_CLASSES:
                raise AMFError(f"cannot decode externalizable AMF3 class {traits.class_name!r}")
            index = len(self.objects)
            self.objects.append(None)
            inner = self.value()
            self.objects[index] = inner
            return inner
        members: dict[str, Any] = {}
        value: Any = TypedObject(traits.class_name, members) if traits.class_name else members
        self.objects.append(value)
        for name in traits.sealed:
            members[name] = self.value()
        if traits.dynamic:
            while True:
                key = self.string()
                if not key:
                    break
                members[key] = self.value()
        return value

    def _vector(self, count: int, marker: int) -> Any:
        kind = _VECTOR_KINDS[marker]
        fixed = self.r.u8() != 0
        vector = Vector(kind, [], fixed)
        self.objects.append(vector)
        if kind == "object":
            vector.class_name = self.string()
            if count > self.r.remaining():
                raise AMFError(f"AMF3 vector claims {count} elements in {self.r.remaining()} bytes")
            vector.items = [self.value() for _ in range(count)]
        else:
            item = _VECTOR_ITEM[kind]
            raw = self.r.read(count * item.size)
            vector.items = [v[0] for v in item.iter_unpack(raw)]
        return vector

    def _dictionary(self, count: int, _marker: int) -> Any:
        weak = self.r.u8() != 0
        dictionary = Dictionary([], weak)
        self.objects.append(dictionary)
        if count > self.r.remaining():
            raise AMFError(f"AMF3 dictionary claims {count} entries in {self.r.remaining()} bytes")
        for _ in range(count):
            key = self.value()
            dictionary.items.append((key, self.value()))
        return dictionary

    #: Readers of the reference-counted (complex) markers.
    COMPLEX = {
        XML_DOC: _xml,
        XML_MARKER: _xml,
        DATE: _date,
        ARRAY: _array,
        OBJECT: _object,
        BYTE_ARRAY: _bytes,
        VECTOR_INT: _vector,
        VECTOR_UINT: _vector,
        VECTOR_DOUBLE: _vector,
        VECTOR_OBJECT: _vector,
        DICTIONARY: _dictionary,
    }


def decode_from(reader: ByteReader, depth: int = 0) -> Any:
    """Decode one AMF3 value at the reader's position (used by AMF0's AVM+ switch)."""
    return _Decoder(reader, depth).value()


def decode(data: bytes | memoryview) -> Any:
    """Decode the first AMF3 value in `data`.

    Raises:
        AMFError: the data is not valid AMF3.
    """
    return decode_from(ByteReader(data, AMFError))


# -- encoding ---------------------------------------------------------------------------


def _u29(value: int) -> bytes:
    if value < 0 or value >= 1 << 29:
        raise LocalProtocolError(f"{value} does not fit in an AMF3 U29")
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return bytes(((value >> 7) | 0x80, value & 0x7F))
    if value < 0x200000:
        return bytes(((value >> 14) | 0x80, ((value >> 7) & 0x7F) | 0x80, value & 0x7F))
    return bytes(((value >> 22) | 0x80, ((value >> 15) & 0x7F) | 0x80, ((value >> 8) & 0x7F) | 0x80, value & 0xFF))


class _Encoder:
    __slots__ = ("out", "strings", "traits")

    def __init__(self) -> None:
        self.out = bytearray()
        self.strings: dict[str, int] = {}
        self.traits: dict[str, int] = {}

    def string(self, text: str) -> None:
        if not text:
            self.out.append(0x01)
            return
        index = self.strings.get(text)
        if index is not None:
            self.out += _u29(index << 1)
            return
        self.strings[text] = len(self.strings)
        raw = text.encode("utf-8")
        self.out += _u29((len(raw) << 1) | 1)
        self.out += raw

    def _inline_length(self, marker: int, raw: bytes | bytearray | memoryview) -> None:
        self.out.append(marker)
        self.out += _u29((len(raw) << 1) | 1)
        self.out += raw

    def _dynamic_object(self, class_name: str, members: dict[Any, Any], depth: int) -> None:
        self.out.append(OBJECT)
        index = self.traits.get(class_name)
        if index is not None:
            self.out += _u29((index << 2) | 0b01)
        else:
            self.traits[class_name] = len(self.traits)
            self.out.append(0b1011)  # inline object, inline traits, dynamic, no sealed members
            self.string(class_name)
        for key, item in members.items():
            key = str(key)
            if not key:
                raise LocalProtocolError("AMF3 dynamic members cannot have an empty name")
            self.string(key)
            self.value(item, depth + 1)
        self.out.append(0x01)

    def value(self, value: Any, depth: int) -> None:
        if depth > MAX_AMF_DEPTH:
            raise LocalProtocolError(f"AMF3 value nested deeper than {MAX_AMF_DEPTH} (cyclic?)")
        out = self.out
        if value is None:
            out.append(NULL)
        elif value is Undefined:
            out.append(UNDEFINED)
        elif value is True:
            out.append(TRUE)
        elif value is False:
            out.append(FALSE)
        elif isinstance(value, int) and INTEGER_MIN <= value <= INTEGER_MAX:
            out.append(INTEGER)
            out += _u29(value & 0x1FFFFFFF)
        elif isinstance(value, (int, float)):
            out.append(DOUBLE)
            out += struct.pack(">d", float(value))
        elif isinstance(value, XMLDocument):
            self._inline_length(XML_DOC, value.encode("utf-8"))
        elif isinstance(value, XML):
            self._inline_length(XML_MARKER, value.encode("utf-8"))
        elif isinstance(value, str):
            out.append(STRING)
            self.string(value)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self._inline_length(BYTE_ARRAY, bytes(value))
        elif isinstance(value, _dt.datetime):
            out += bytes((DATE, 0x01))
            out += struct.pack(">d", date_to_milliseconds(value))
        elif isinstance(value, ECMAArray):
            out += bytes((ARRAY, 0x01))  # no dense part
            for key, item in value.items():
                key = str(key)
                if not key:
                    raise LocalProtocolError("AMF3 associative array keys cannot be empty")
                self.string(key)
                self.value(item, depth + 1)
            out.append(0x01)
        elif isinstance(value, (list, tuple)):
            out.append(ARRAY)
            out += _u29((len(value) << 1) | 1)
            out.append(0x01)  # no associative part
            for item in value:
                self.value(item, depth + 1)
        elif isinstance(value, dict):
            self._dynamic_object("", value, depth)
        elif isinstance(value, TypedObject):
            self._dynamic_object(value.class_name, value.members, depth)
        elif isinstance(value, Vector):
            self._vector(value, depth)
        elif isinstance(value, Dictionary):
            out.append(DICTIONARY)
            out += _u29((len(value.items) << 1) | 1)
            out.append(1 if value.weak_keys else 0)
            for key, item in value.items:
                self.value(key, depth + 1)
                self.value(item, depth + 1)
        else:
            raise LocalProtocolError(f"cannot encode {type(value).__name__} as AMF3")

    def _vector(self, vector: Vector, depth: int) -> None:
        marker = _VECTOR_MARKERS.get(vector.kind)
        if marker is None:
            raise LocalProtocolError(f"unknown AMF3 vector kind {vector.kind!r}")
        self.out.append(marker)
        self.out += _u29((len(vector.items) << 1) | 1)
        self.out.append(1 if vector.fixed else 0)
        if vector.kind == "object":
            self.string(vector.class_name)
            for item in vector.items:
                self.value(item, depth + 1)
            return
        item_struct = _VECTOR_ITEM[vector.kind]
        try:
            for item in vector.items:
                self.out += item_struct.pack(item)
        except struct.error as exc:
            raise LocalProtocolError(f"bad {vector.kind} vector element: {exc}") from None


def encode(value: Any) -> bytes:
    """Encode one Python value as AMF3 (see `amf_types` for the mapping).

    Raises:
        LocalProtocolError: the value has no AMF3 form.
    """
    encoder = _Encoder()
    encoder.value(value, 0)
    return bytes(encoder.out)
