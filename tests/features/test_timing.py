"""Stage timing: recorded only inside `recording()`, nested stages kept apart, and the CLI's
`--profile-out` writes the stages a real command went through."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner

from detector.cli import app
from features import timing


def test_stages_are_recorded_only_while_recording():
    with timing.stage("outside"):
        pass
    with timing.recording() as record:
        with timing.stage("outer"):
            time.sleep(0.02)
            for _ in range(3):
                with timing.stage("inner"):
                    time.sleep(0.01)
        with timing.stage("outer"):
            pass
    with timing.stage("after"):
        pass
    rows = {name: (depth, seconds, calls) for name, depth, seconds, calls in record.rows()}
    assert set(rows) == {"outer", "inner"}
    assert rows["outer"][0] == 0 and rows["inner"][0] == 1
    assert rows["outer"][2] == 2 and rows["inner"][2] == 3
    assert rows["inner"][1] >= 0.03 and rows["outer"][1] >= rows["inner"][1] + 0.02


def test_a_failing_stage_is_still_timed():
    with timing.recording() as record:
        try:
            with timing.stage("boom"):
                raise ValueError("x")
        except ValueError:
            pass
    assert record.calls == {"boom": 1}


def test_cli_profile_out_lists_the_stages_of_a_run(tmp_path):
    from tests.conftest import write_jsonl
    from tests.features.test_pipeline import req

    src = write_jsonl(tmp_path / "r.jsonl", [req(i, 1 + i % 3) for i in range(30)])
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(
        app,
        ["--profile-out", str(out), "ingest", str(src), "--store", str(tmp_path / "store")],
    )
    assert result.exit_code == 0, result.output
    profile = json.loads(out.read_text())
    stages = [s["stage"] for s in profile["stages"]]
    assert "ingest: validate" in stages and "ingest: stage" in stages
    assert any(s.startswith("ingest: commit requests") for s in stages)
    assert profile["wall_seconds"] >= sum(s["seconds"] for s in profile["stages"] if not s["depth"])
