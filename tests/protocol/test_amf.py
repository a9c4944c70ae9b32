"""AMF0 and AMF3: known byte vectors, references, round trips and garbage."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurtmp.errors import AMFError, LocalProtocolError
from neurtmp.protocol import amf0, amf3
from neurtmp.protocol.amf_types import XML, Dictionary, ECMAArray, TypedObject, Undefined, Vector, XMLDocument

UTC = dt.timezone.utc

# -- AMF0 vectors -------------------------------------------------------------------------


def test_amf0_scalars_have_their_spec_encoding() -> None:
    assert amf0.encode(1.5) == b"\x00\x3f\xf8\x00\x00\x00\x00\x00\x00"
    assert amf0.encode(True) == b"\x01\x01"
    assert amf0.encode("ab") == b"\x02\x00\x02ab"
    assert amf0.encode(None) == b"\x05"
    assert amf0.encode(Undefined) == b"\x06"


def test_amf0_object_and_ecma_array_end_with_object_end_marker() -> None:
    assert amf0.encode({"a": 1}) == b"\x03\x00\x01a\x00\x3f\xf0" + b"\x00" * 6 + b"\x00\x00\x09"
    encoded = amf0.encode(ECMAArray(w=2))
    assert encoded[:5] == b"\x08\x00\x00\x00\x01"
    assert encoded.endswith(b"\x00\x00\x09")
    decoded = amf0.decode(encoded)
    assert isinstance(decoded, ECMAArray) and decoded == {"w": 2.0}


def test_amf0_long_string_and_xml_document() -> None:
    long = "x" * 70000
    encoded = amf0.encode(long)
    assert encoded[0] == 0x0C and int.from_bytes(encoded[1:5], "big") == 70000
    assert amf0.decode(encoded) == long
    xml = amf0.decode(amf0.encode(XMLDocument("<a/>")))
    assert isinstance(xml, XMLDocument) and xml == "<a/>"


def test_amf0_date_is_milliseconds_since_epoch_utc() -> None:
    when = dt.datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    encoded = amf0.encode(when)
    assert encoded[0] == 0x0B and len(encoded) == 11
    assert amf0.decode(encoded) == when


def test_amf0_reference_points_to_the_same_object() -> None:
    inner = b"\x03\x00\x01k\x02\x00\x01v\x00\x00\x09"
    data = b"\x0a\x00\x00\x00\x02" + inner + b"\x07\x00\x01"
    value = amf0.decode(data)
    # reference 0 is the array itself, 1 the inner object
    assert value[0] == {"k": "v"}
    assert value[1] is value[0]


def test_amf0_typed_object_and_avmplus_switch() -> None:
    typed = amf0.decode(amf0.encode(TypedObject("com.example.Point", {"x": 1.0})))
    assert typed == TypedObject("com.example.Point", {"x": 1.0})
    assert amf0.decode(b"\x11\x04\x7f") == 127  # AMF3 integer behind the switch
    assert amf0.decode(amf0.encode(b"\x01\x02")) == b"\x01\x02"


def test_amf0_decode_all_reads_a_command_body() -> None:
    body = amf0.encode_all(["connect", 1.0, {"app": "live"}, None])
    assert amf0.decode_all(body) == ["connect", 1.0, {"app": "live"}, None]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01",  # truncated number
        b"\x02\x00\x05ab",  # truncated string
        b"\x02\x00\x02\xff\xfe",  # invalid UTF-8
        b"\x03\x00\x01a",  # object without end
        b"\x07\x00\x05",  # reference to nothing
        b"\x04",  # movieclip: reserved
        b"\x0e",  # recordset: reserved
        b"\x09",  # stray object end
        b"\x0a\xff\xff\xff\xff",  # strict array claiming 4G elements
        b"\x0b\x7f\xf0\x00\x00\x00\x00\x00\x00\x00\x00",  # infinite date
        b"\x0a\x00\x00\x00\x01" * 100 + b"\x05",  # nested too deep
        b"\x42",  # unknown marker
    ],
)
def test_amf0_garbage_raises_amf_error(data: bytes) -> None:
    with pytest.raises(AMFError):
        amf0.decode_all(data) if data else amf0.decode(data)


def test_amf0_refuses_values_it_cannot_encode() -> None:
    with pytest.raises(LocalProtocolError):
        amf0.encode(object())
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(LocalProtocolError):
        amf0.encode(cyclic)


# -- AMF3 vectors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x04\x00"),
        (0x7F, b"\x04\x7f"),
        (0x80, b"\x04\x81\x00"),
        (0x3FFF, b"\x04\xff\x7f"),
        (0x4000, b"\x04\x81\x80\x00"),
        (0x1FFFFF, b"\x04\xff\xff\x7f"),
        (0x200000, b"\x04\x80\xc0\x80\x00"),
        (0x0FFFFFFF, b"\x04\xbf\xff\xff\xff"),
        (-1, b"\x04\xff\xff\xff\xff"),
        (-(1 << 28), b"\x04\xc0\x80\x80\x00"),
    ],
)
def test_amf3_u29_integers_at_every_length_boundary(value: int, encoded: bytes) -> None:
    assert amf3.encode(value) == encoded
    assert amf3.decode(encoded) == value


def test_amf3_integer_out_of_range_becomes_double() -> None:
    assert amf3.encode(1 << 28)[0] == 0x05
    assert amf3.decode(amf3.encode(1 << 28)) == float(1 << 28)


def test_amf3_string_and_trait_references_are_written_and_resolved() -> None:
    value = [TypedObject("P", {"x": "same"}), TypedObject("P", {"x": "same"}), "same"]
    encoded = amf3.encode(value)
    assert encoded.count(b"same") == 1  # later uses are references
    assert encoded.count(b"P") == 1  # the second object refers to the first's traits
    assert amf3.decode(encoded) == value


def test_amf3_object_reference_and_sealed_members() -> None:
    # array of 2: an object with traits (class "C", sealed member "a", not dynamic), then a reference to it
    data = b"\x09\x05\x01" + b"\x0a\x13\x03C\x03a\x04\x05" + b"\x0a\x02"
    value = amf3.decode(data)
    assert value[0] == TypedObject("C", {"a": 5})
    assert value[1] is value[0]


def test_amf3_externalizable_array_collection_unwraps_its_array() -> None:
    name = b"flex.messaging.io.ArrayCollection"
    data = b"\x0a\x07" + bytes([(len(name) << 1) | 1]) + name + b"\x09\x03\x01\x04\x01"
    assert amf3.decode(data) == [1]


def test_amf3_complex_types_round_trip() -> None:
    value = {
        "bytes": b"\x00\xff",
        "when": dt.datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC),
        "xml": XML("<x/>"),
        "doc": XMLDocument("<d/>"),
        "ints": Vector("int", [-1, 2], fixed=True),
        "uints": Vector("uint", [1, 4294967295]),
        "doubles": Vector("double", [0.5]),
        "objs": Vector("object", [{"a": 1}], class_name="Object"),
        "dict": Dictionary([(1, "one"), ("k", None)], weak_keys=True),
        "assoc": ECMAArray(a=1, b="c"),
        "undef": Undefined,
    }
    assert amf3.decode(amf3.encode(value)) == value


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x12",  # unknown marker
        b"\x06\x05",  # string reference to nothing
        b"\x06\x07a",  # truncated inline string
        b"\x0a\x01",  # traits reference to nothing
        b"\x0a\x07\x07Foo",  # externalizable class we cannot read
        b"\x0d\xff\xff\xff\x7f\x00",  # int vector claiming far more than present
        b"\x09\x03" + b"\x01",  # array with no element after its header
        b"\x08\x01\x7f\xf0\x00\x00\x00\x00\x00\x00",  # infinite date
        b"\x09\x03\x01" * 80 + b"\x01",  # nested too deep
    ],
)
def test_amf3_garbage_raises_amf_error(data: bytes) -> None:
    with pytest.raises(AMFError):
        amf3.decode(data)


# -- round trips --------------------------------------------------------------------------

_keys = st.text(min_size=1, max_size=8)
_dates = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
_finite = st.floats(allow_nan=False)
_scalars0 = st.one_of(st.none(), st.just(Undefined), st.booleans(), _finite, st.text(max_size=20), _dates)
amf0_values = st.recursive(
    _scalars0,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_keys, children, max_size=4),
        st.dictionaries(_keys, children, max_size=4).map(ECMAArray),
        st.builds(TypedObject, _keys, st.dictionaries(_keys, children, max_size=3)),
    ),
    max_leaves=12,
)

_scalars3 = st.one_of(
    st.none(),
    st.just(Undefined),
    st.booleans(),
    st.integers(min_value=-(1 << 28), max_value=(1 << 28) - 1),
    _finite.filter(lambda f: not f.is_integer()),
    st.text(max_size=20),
    st.binary(max_size=20),
    _dates,
    st.text(max_size=10).map(XML),
    st.text(max_size=10).map(XMLDocument),
    st.builds(Vector, st.just("int"), st.lists(st.integers(-(1 << 31), (1 << 31) - 1), max_size=4), st.booleans()),
    st.builds(Vector, st.just("double"), st.lists(_finite, max_size=4), st.booleans()),
)
amf3_values = st.recursive(
    _scalars3,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_keys, children, max_size=4),
        # an empty AMF3 associative array is indistinguishable from an empty list
        st.dictionaries(_keys, children, min_size=1, max_size=4).map(ECMAArray),
        st.builds(TypedObject, _keys, st.dictionaries(_keys, children, max_size=3)),
        st.builds(Dictionary, st.lists(st.tuples(st.integers(0, 100), children), max_size=3), st.booleans()),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(amf0_values, max_size=4))
def test_amf0_values_round_trip(values: list[object]) -> None:
    assert amf0.decode_all(amf0.encode_all(values)) == values


@settings(max_examples=300, deadline=None)
@given(amf3_values)
def test_amf3_values_round_trip(value: object) -> None:
    assert amf3.decode(amf3.encode(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_amf_error(data: bytes) -> None:
    for decode in (amf0.decode_all, amf3.decode):
        try:
            decode(data)
        except AMFError:
            pass


def test_nan_round_trips_as_nan() -> None:
    assert math.isnan(amf0.decode(amf0.encode(float("nan"))))
    assert math.isnan(amf3.decode(amf3.encode(float("nan"))))
