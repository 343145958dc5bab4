"""The Unicode sparklines of Slack and the terminal: a step means the same share of the values
in every series, so a small change never reads as a fall to zero."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from blocks.marks import SPARK_SPAN, SPARKS, sparkline, trend, unit_of

FREE_GIB = [8.2, 8.15, 8.1, 8.0, 7.95, 7.9, 7.8, 7.75, 7.7, 7.6, 7.55, 7.5]
magnitudes = st.floats(min_value=0.01, max_value=1e9, allow_nan=False, allow_infinity=False)
shares = st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=60)


def levels(line: str) -> list[int]:
    return [SPARKS.index(c) for c in line]


def test_it_draws_a_small_fall_of_free_storage_as_a_step_not_a_fall_to_zero() -> None:
    line = sparkline(FREE_GIB)
    assert "▁" not in line and "█" not in line
    assert max(levels(line)) - min(levels(line)) <= 2
    assert levels(line) == sorted(levels(line), reverse=True)  # still falling
    assert trend(FREE_GIB, " GiB") == f"{line} 7.5–8.2 GiB"


def test_it_draws_a_big_change_over_the_whole_height_without_a_range() -> None:
    hot = [22.0, 25.0, 31.0, 48.0, 77.0, 93.0]
    assert sparkline(hot) == "▁▁▂▄▆█"
    assert trend(hot, " %") == "▁▁▂▄▆█"


def test_it_keeps_flat_series_flat_in_the_middle_and_skips_what_is_not_a_number() -> None:
    assert sparkline([5, 5, 5]) == "▄▄▄"
    assert sparkline([0.0, 0.0]) == "▄▄"
    assert sparkline([]) == "" and sparkline([None, math.nan]) == ""
    assert sparkline([None, 3.0, math.inf, 3.0]) == "▄▄"
    assert trend([7.5, 7.5], " GiB") == "▄▄"


def test_it_names_the_unit_of_a_series_from_its_name() -> None:
    assert unit_of("shop-db:free_storage_gib") == " GiB"
    assert unit_of("eu-west-1/shop-db:freeable_memory_mib") == " MiB"
    assert unit_of("shop-db:cpu") == " %"
    assert unit_of("shop-db:connections") == "" and unit_of("service:Amazon Athena") == ""


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=80))
def test_it_draws_one_character_per_point_up_to_its_width(values: list[float]) -> None:
    assert len(sparkline(values)) == min(len(values), 12)
    assert len(sparkline(values, width=40)) == min(len(values), 40)
    assert set(sparkline(values)) <= set(SPARKS)


@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(1, 12))
def test_it_draws_an_all_equal_series_on_one_level(value: float, n: int) -> None:
    assert sparkline([value] * n) == SPARKS[3] * n


@given(magnitudes, shares, st.floats(min_value=0, max_value=0.3), st.booleans())
def test_it_never_spans_more_levels_than_the_change_is_worth(
    size: float, spread: list[float], share: float, negative: bool
) -> None:
    """Values within ``share`` of the largest of them span at most 7 × share / SPARK_SPAN
    levels (and one for rounding): 10 % is at most 2 of the 8."""
    sign = -1 if negative else 1
    values = [sign * size * (1 - share * x) for x in spread]
    drawn = levels(sparkline(values, width=len(values)))
    assert max(drawn) - min(drawn) <= math.floor(7 * share / SPARK_SPAN + 1e-9) + 1


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=12))
def test_it_keeps_the_order_of_the_values(values: list[float]) -> None:
    drawn = levels(sparkline(values))
    by_value = [level for _, level in sorted(zip(values, drawn, strict=True))]
    assert by_value == sorted(by_value)
