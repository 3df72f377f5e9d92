"""The SQL twins of the domain's pure helpers agree with them (durations SPEC §5.1, billing anomalies SPEC §5.2)."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.analytics.sql import connect
from herald.domain.billing import billing_anomaly
from herald.domain.durations import DurationError, format_mmss, parse_duration


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return connect()


def python_duration(text: str) -> int | None:
    try:
        return parse_duration(text)
    except DurationError:
        return None


# Texts near the duration grammar: digits, separators and the whitespace the SQL trims (space, tab, CR, LF).
near_durations = st.text(alphabet="0123456789:. \t\r\n", max_size=12)
clock_texts = st.builds(
    lambda h, m, s, pad: (f"{h}:" if h is not None else "") + (f"{m:02d}" if pad else str(m)) + f":{s:02d}",
    st.none() | st.integers(0, 999),
    st.integers(0, 200),
    st.integers(0, 99),
    st.booleans(),
)
formatted = st.integers(0, 10**7).map(format_mmss)


@settings(max_examples=300, deadline=None)
@given(st.lists(near_durations | clock_texts | formatted, min_size=1, max_size=30))
def test_sql_duration_agrees_with_parse_duration(con: duckdb.DuckDBPyConnection, texts: list[str]) -> None:
    rows = con.execute("SELECT t, h_duration(t) FROM unnest(CAST(? AS VARCHAR[])) AS u(t)", [texts]).fetchall()
    assert {t: d for t, d in rows} == {t: python_duration(t) for t in texts}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5000),
            st.integers(0, 5000) | st.integers(0, 10),
            st.sampled_from([None, "", "human", "machine", "unknown", "Human", "robot"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_sql_anomaly_agrees_with_billing_anomaly(
    con: duckdb.DuckDBPyConnection, calls: list[tuple[int, int, str | None]]
) -> None:
    for duration, billed, answered_by in calls:
        # also the exact expected values, which random billed values rarely hit
        for b in (billed, duration, min(duration, 5)):
            (sql,) = con.execute("SELECT h_anomaly(?, ?, ?)", [duration, b, answered_by]).fetchone() or (None,)
            assert sql == billing_anomaly(duration, b, answered_by), (duration, b, answered_by)
