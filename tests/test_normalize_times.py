"""parse_time's integer reading of whole numbers against its float reading: a number
given as an int or as ASCII digits takes a path of its own (integer arithmetic), which
must give the time, and the refusals, of the general path that reads it as a float."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from archive.normalize import TimeParseError, parse_time

SAMPLES = settings(max_examples=2000, deadline=None, derandomize=True)
# Around every bound the two paths meet: zero, seconds against milliseconds (10^11),
# the end of the integer path (10^15), the last year datetime holds, float precision.
EDGES = [0, 1, 10**11 - 1, 10**11, 10**11 + 1, 253402300799, 253402300800, 253402300799999]
EDGES += [253402300800000, 10**15 - 1, 10**15, 10**15 + 1, 2**53, 2**53 + 1, 10**20]
NUMBERS = st.one_of(
    st.sampled_from(EDGES),
    st.integers(min_value=-10, max_value=10**12),
    st.integers(min_value=10**11, max_value=10**16),
    st.integers(min_value=0, max_value=10**22),
)


def reading(value: object) -> datetime | type[TimeParseError]:
    try:
        moment = parse_time(value)
    except TimeParseError:
        return TimeParseError
    assert moment.tzinfo is UTC
    return moment


@SAMPLES
@given(NUMBERS)
def test_an_int_reads_as_its_float(number: int) -> None:
    # float(number) is exact below 2^53; above it both read float(number) anyway.
    assert reading(number) == reading(float(number))


@SAMPLES
@given(NUMBERS, st.sampled_from(["", "0", "00"]))
def test_digits_read_as_the_general_path_reads_them(number: int, zeros: str) -> None:
    digits = zeros + str(abs(number))
    # A space around the digits keeps them off the integer path (the general one strips).
    assert reading(digits) == reading(f" {digits} ")


def test_what_only_looks_like_digits_takes_the_general_path() -> None:
    # Arabic-Indic digits, as float() reads them.
    assert reading("١٧٧٩٤٣١٤٠٠") == reading(1779431400)
    assert reading(True) is TimeParseError
    assert reading("12.5") == reading(12.5)
