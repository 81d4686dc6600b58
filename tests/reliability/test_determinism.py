"""Two clean nightly runs of the same date give the same warehouse, reasons included, on a
world with thousands of accounts (ties in link evidence, scores and cluster sizes happen);
benchmarks/determinism.py runs the same check at millions of requests (docs/RELIABILITY.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from detector import simulate as sim
from detector.warehouse import contents
from tests.conftest import ingest_world


def test_two_clean_nightly_runs_are_equal_reasons_included(tmp_path):
    config = sim.scenario("evasive", accounts=2500, days=3, seed=77, volume_scale=0.12)
    store = ingest_world(sim.simulate(config), tmp_path)
    day = config.start.date() + timedelta(days=config.days - 1)
    cli = Path(sys.executable).parent / "distillguard"
    for name, hash_seed in (("a", "1"), ("b", "2")):  # separate processes, other set orders
        done = subprocess.run(
            [cli, "nightly", "--store", store, "--date", day.isoformat(), "--window-days", "3",
             "--warehouse", tmp_path / f"{name}.duckdb"],
            env=os.environ | {"PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    first, second = contents(tmp_path / "a.duckdb"), contents(tmp_path / "b.duckdb")
    assert first.keys() == second.keys()
    flagged = [r for r in first["account_scores"] if r[3]]
    assert len(flagged) >= 20 and any(r[5] for r in flagged)  # reasons exist to compare
    for name in first:
        assert first[name] == second[name], name
