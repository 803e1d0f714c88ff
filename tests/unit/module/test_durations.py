"""Durations in Flink's ``TimeUtils.parseDuration`` format, as whole milliseconds."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystatefun.module._durations import format_duration, parse_duration_ms


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("0", 0),
        ("500", 500),
        (" 500 ", 500),
        ("500ms", 500),
        ("500 ms", 500),
        ("1 milli", 1),
        ("2 millis", 2),
        ("3millisecond", 3),
        ("4 milliseconds", 4),
        ("1s", 1000),
        ("10 sec", 10_000),
        ("10 secs", 10_000),
        ("1second", 1000),
        ("10seconds", 10_000),
        ("10second", 10_000),
        ("2m", 120_000),
        ("2min", 120_000),
        ("2 mins", 120_000),
        ("1minute", 60_000),
        ("1minutes", 60_000),
        ("1 MIN", 60_000),
        ("1h", 3_600_000),
        ("2 hour", 7_200_000),
        ("2 hours", 7_200_000),
        ("1d", 86_400_000),
        ("1 day", 86_400_000),
        ("3 days", 259_200_000),
        (0, 0),
        (1500, 1500),
    ],
)
def test_accepted_spellings(text: str | int, millis: int) -> None:
    assert parse_duration_ms(text) == millis


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("2 fortnights", "'2 fortnights' is not a duration; use a number with a unit like"),
        ("", "'' is not a duration"),
        ("min", "'min' is not a duration"),
        ("1.5s", "'1.5s' is not a duration"),
        ("-1s", "'-1s' is not a duration"),
        ("1 m in", "'1 m in' is not a duration"),
        ("\u0661\u0660s", "is not a duration"),  # Arabic-Indic digits: only ASCII ones count
        (1.5, "1.5 is not a duration"),
        (True, "True is not a duration"),
        (None, "None is not a duration"),
        ([1], "[1] is not a duration"),
        (-5, "-5 is negative; a duration is at least 0 ms"),
        ("500us", "'500us' is below millisecond precision"),
        ("5 ns", "'5 ns' is below millisecond precision"),
        ("99999999999999999999 d", "is too long"),
    ],
)
def test_rejected_values_say_the_accepted_format(value: object, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_duration_ms(value)


@pytest.mark.parametrize(
    ("millis", "text"),
    [
        (0, "0ms"),
        (1, "1ms"),
        (1500, "1500ms"),
        (2000, "2s"),
        (120_000, "2min"),
        (90_000, "90s"),
        (3_600_000, "1h"),
        (86_400_000, "1d"),
        (90_000_000, "25h"),
    ],
)
def test_format_is_the_largest_exact_unit(millis: int, text: str) -> None:
    assert format_duration(millis) == text


@given(st.integers(0, 2**40))
def test_format_then_parse_is_identity(millis: int) -> None:
    assert parse_duration_ms(format_duration(millis)) == millis
