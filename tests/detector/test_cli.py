"""The command line: exit codes, messages and the printed reconciliation."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from detector.cli import app

runner = CliRunner()
ROW = '{"request_id": "r1", "ts": "2026-03-01T10:00:00Z", "account_id": "a", "request_model": "m", "prompt": "p"}'


def test_ingest_prints_reconciled_counts(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text(ROW + "\n{broken\n")
    result = runner.invoke(app, ["ingest", str(src), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "requests" in result.stdout
    line = next(x for x in result.stdout.splitlines() if "requests" in x and "True" in x)
    assert [c for c in line.replace("│", " ").split()] == [
        "requests",
        "2",
        "1",
        "0",
        "1",
        "0",
        "True",
    ]


def test_missing_source_exits_2_and_names_it(tmp_path):
    result = runner.invoke(
        app, ["ingest", str(tmp_path / "nope.jsonl"), "--store", str(tmp_path / "s")]
    )
    assert result.exit_code == 2
    assert "nope.jsonl: no such file" in result.output


def test_unknown_format_exits_2(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text(ROW + "\n")
    result = runner.invoke(
        app, ["ingest", str(src), "--store", str(tmp_path / "s"), "--format", "csv"]
    )
    assert result.exit_code == 2
    assert "format must be auto or one of" in result.output


def test_console_script_is_installed(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "detector.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "ingest" in out.stdout
