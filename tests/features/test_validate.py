"""The canonical validator: exact cases, and generated junk that must never crash it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import ingest
from features.adapters import Kind
from features.schema import REQUESTS
from features.sources import Line
from features.validate import Limits, check

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_exact_good_row():
    cols = {
        "request_id": ["r"],
        "ts": ["2026-05-01T12:00:00.5+02:00"],
        "account_id": ["a"],
        "request_model": ["m"],
        "prompt": [""],
        "thinking_mode": ["adaptive"],
        "temperature": [0.7],
    }
    out = check(cols, 1, REQUESTS, Limits(now=NOW))
    assert out.bad_rows == []
    row = out.good.to_pylist()[0]
    assert row["ts"] == datetime(2026, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert row["prompt"] == ""


def test_reasons_name_each_problem():
    cols = {
        "request_id": ["r", "s"],
        "ts": ["2026-05-01T00:00:00Z", "yesterday"],
        "account_id": ["a", "a"],
        "request_model": ["m", "m"],
        "prompt": ["p", "p"],
        "thinking_mode": ["sometimes", None],
        "status_code": [700, 200],
    }
    out = check(cols, 2, REQUESTS, Limits(now=NOW))
    assert out.bad_rows == [0, 1]
    assert out.bad_reasons[0] == "status_code: outside 100-599"
    assert out.bad_reasons[1] == "ts: 'yesterday' is not ISO-8601 with a time zone"


def test_regression_unknown_thinking_mode_keeps_the_row_nulled_with_the_raw_value_in_extra():
    cols = {
        "request_id": ["r", "s", "t"],
        "ts": ["2026-05-01T00:00:00Z"] * 3,
        "account_id": ["a"] * 3,
        "request_model": ["m"] * 3,
        "prompt": ["p"] * 3,
        "thinking_mode": ["sometimes", "enabled", "sometimes"],
        "extra": [None, None, '{"k": 1}'],
    }
    out = check(cols, 3, REQUESTS, Limits(now=NOW))
    assert out.bad_rows == []
    assert out.good.column("thinking_mode").to_pylist() == [None, "enabled", None]
    extras = [None if e is None else json.loads(e) for e in out.good.column("extra").to_pylist()]
    assert extras == [{"thinking_mode": "sometimes"}, None, {"thinking_mode": "sometimes", "k": 1}]
    assert out.warnings == {
        "thinking_mode 'sometimes': not one of disabled, enabled, adaptive; set to null, "
        "kept in extra": 2
    }


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
field = st.sampled_from([*REQUESTS.names, "unknown_a", "unknown_b"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(field, junk, max_size=12), max_size=25))
def test_generated_junk_never_crashes_and_counts_reconcile(records):
    lines = [(Line(i + 1, repr(r)), r) for i, r in enumerate(records)]
    done = ingest.convert_records(Kind("canonical"), lines, ingest.Options())
    good, rejects, n_read = done.good, done.rejects, done.n_read
    assert n_read == len(records)
    assert good.num_rows + len(rejects) == n_read
    assert all(reason for _, reason, _ in rejects)
    assert good.schema == REQUESTS.arrow_schema()
    for name in REQUESTS.required:
        assert good.column(name).null_count == 0


def test_regression_epoch_seconds_beyond_int64_are_quarantined_not_crashing():
    out = check(
        {
            "request_id": ["r"],
            "ts": [-9223372036854775809],
            "account_id": ["a"],
            "request_model": ["m"],
            "prompt": [""],
        },
        1,
        REQUESTS,
        Limits(now=NOW),
    )
    assert out.bad_reasons == ["ts: epoch seconds -9223372036854775809 out of range"]


def test_regression_unknown_field_with_int_beyond_64_bits_is_kept_as_text():
    lines = [
        (
            Line(1, "raw"),
            {
                "request_id": "r",
                "ts": "2026-05-01T00:00:00Z",
                "account_id": "a",
                "request_model": "m",
                "prompt": "",
                "big": 2**70,
            },
        )
    ]
    done = ingest.convert_records(Kind("canonical"), lines, ingest.Options(limits=Limits(now=NOW)))
    good, rejects = done.good, done.rejects
    assert rejects == [] and good.column("extra").to_pylist() == ['{"big": 1180591620717411303424}']
