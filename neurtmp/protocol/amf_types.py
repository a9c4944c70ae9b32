"""Python types for AMF values that have no exact builtin counterpart.

The mapping, for AMF0 and AMF3 alike:

==================  ==========================================================
AMF                 Python
==================  ==========================================================
number / integer    float (AMF0), int (AMF3 integer), float (AMF3 double)
boolean             bool
string              str
null / undefined    None / :data:`Undefined`
object (anonymous)  dict
typed object        :class:`TypedObject`
ECMA array          :class:`ECMAArray` (a dict subclass)
strict array        list
date                datetime.datetime (UTC)
XML document        :class:`XMLDocument` (a str subclass); AMF3 E4X XML: :class:`XML`
byte array (AMF3)   bytes
vector (AMF3)       :class:`Vector`
dictionary (AMF3)   :class:`Dictionary`
==================  ==========================================================
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Dictionary",
    "ECMAArray",
    "EPOCH",
    "TypedObject",
    "Undefined",
    "Vector",
    "XML",
    "XMLDocument",
]

#: The AMF date origin; AMF dates are milliseconds since this instant.
EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class _UndefinedType:
    """The AMF `undefined` value (distinct from `null`, which is None)."""

    _instance: _UndefinedType | None = None

    def __new__(cls) -> _UndefinedType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Undefined"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "Undefined"


#: The single AMF `undefined` value.
Undefined = _UndefinedType()


class ECMAArray(dict):  # type: ignore[type-arg]
    """An AMF0 ECMA array (associative array), as used by onMetaData."""

    def __repr__(self) -> str:
        return f"ECMAArray({dict.__repr__(self)})"


class XMLDocument(str):
    """An AMF0 XML document, or AMF3 legacy XMLDocument."""

    __slots__ = ()


class XML(str):
    """An AMF3 E4X XML value."""

    __slots__ = ()


@dataclass(eq=True)
class TypedObject:
    """An object with a class name (AMF0 typed object, AMF3 object with traits)."""

    class_name: str
    members: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=True)
class Vector:
    """An AMF3 vector.

    Attributes:
        kind: "int", "uint", "double" or "object".
        items: the elements.
        fixed: True for a fixed-length vector.
        class_name: the element type name of an object vector ("" for `*`).
    """

    kind: str
    items: list[Any] = field(default_factory=list)
    fixed: bool = False
    class_name: str = ""


@dataclass(eq=True)
class Dictionary:
    """An AMF3 dictionary; keys may be any AMF value, so it is a list of pairs."""

    items: list[tuple[Any, Any]] = field(default_factory=list)
    weak_keys: bool = False


def date_from_milliseconds(milliseconds: float) -> _dt.datetime:
    """An AMF date value as an aware UTC datetime.

    Raises:
        ValueError / OverflowError: the value is not a representable date.
    """
    if milliseconds != milliseconds:  # NaN
        raise ValueError("NaN date")
    return EPOCH + _dt.timedelta(milliseconds=milliseconds)


def date_to_milliseconds(value: _dt.datetime) -> float:
    """Milliseconds since the epoch for a datetime (naive ones are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    delta = value - EPOCH
    return (delta.days * 86_400_000) + (delta.seconds * 1000) + delta.microseconds / 1000
