"""Fault injection: `ingest` and `nightly` killed outright (SIGKILL) at every named failpoint
(`features.failpoints`: during the store commit, inside the warehouse transaction, mid-export)
and at seeded random moments, then rerun. The rerun must leave tables equal to a clean run's,
value for value in every column (text included), no staging or temporary files, and no lock
held."""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detector import simulate as sim
from detector.warehouse import RUN_TIMINGS, contents
from features.failpoints import NAMES

CLI = Path(sys.executable).parent / "distillguard"
INGEST_POINTS = [n for n in NAMES if n.startswith("ingest.")]
NIGHTLY_POINTS = [n for n in NAMES if n.startswith(("nightly.", "warehouse."))]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    """A world as logs: canonical JSONL (with a bad line, a duplicate and a conflicting
    duplicate) plus Parquet accounts; the dates the nightly tests score."""
    root = tmp_path_factory.mktemp("faults")
    config = sim.scenario("default", accounts=220, days=4, seed=31, volume_scale=0.35)
    world = sim.simulate(config)
    lines = [orjson.dumps(r, default=str) for r in world.requests.head(40_000).to_dicts()]
    first = orjson.loads(lines[0])
    lines += [lines[0], orjson.dumps(first | {"prompt": "changed"}), b'{"broken": ']
    (root / "requests.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    world.accounts.write_parquet(root / "accounts.parquet")
    last = config.start.date() + timedelta(days=config.days - 1)
    return {
        "root": root,
        "files": [root / "requests.jsonl", root / "accounts.parquet"],
        "last": last,
    }


def _run(args: list, env: dict | None = None, kill_after: float | None = None) -> int:
    environment = os.environ | (env or {})
    if kill_after is None:
        done = subprocess.run([CLI, *map(str, args)], env=environment, capture_output=True)
        return done.returncode
    proc = subprocess.Popen(
        [CLI, *map(str, args)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(kill_after)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    return proc.wait()


def _table(files: list[Path], drop: tuple[str, ...] = (), by: tuple[str, ...] = ()) -> pa.Table:
    table = pa.concat_tables([pq.read_table(f) for f in files]) if files else pa.table({})
    table = table.drop_columns([c for c in drop if c in table.column_names])
    keys = by or tuple(
        f.name for f in table.schema if not pa.types.is_nested(f.type)
    )  # lists do not sort; the rest orders every row of these tables
    return table.sort_by([(k, "ascending") for k in keys]) if table.num_rows else table


def _store_tables(store: Path) -> dict[str, pa.Table]:
    return {
        "requests": _table(sorted(store.glob("requests/dt=*/*.parquet")), by=("request_id",)),
        "accounts": _table(sorted(store.glob("accounts/*.parquet")), by=("account_id",)),
        "quarantine": _table(
            sorted(store.glob("quarantine/dt=*/*.parquet")),
            drop=("quarantined_at",),
            by=("source_file", "line", "reason"),
        ),
    }


def _assert_clean(folder: Path, lock: Path) -> None:
    assert not list(folder.rglob("_staging")), "staging left behind"
    assert not list(folder.rglob("*.tmp")), "temporary files left behind"
    with open(lock, "w") as handle:  # raises BlockingIOError if a dead run still held it
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _timed(args: list) -> float:
    started = time.monotonic()
    assert _run(args) == 0
    return time.monotonic() - started


def _kill_delay(fault: str, clean_s: float) -> float:
    """A seeded moment early to late in a run as long as the clean one (process start-up
    included), so the kill lands while it works."""
    return random.Random(int(fault.split(":")[1])).uniform(0.15, 0.7) * clean_s


def _kill_mid_run(args: list, fault: str, clean_s: float, reset) -> float:
    """Kill `args` at a seeded moment of a run as long as the clean one; when the machine ran
    it faster than the clean run was timed (the load changed) and it finished first, `reset`
    what it wrote and try again at half the delay. Returns the delay of the kill."""
    delay = _kill_delay(fault, clean_s)
    for _ in range(4):
        if _run(args, kill_after=delay) == -signal.SIGKILL:
            return delay
        reset()
        delay /= 2
    raise AssertionError(f"the run always ended before the kill (last try at {delay:.1f} s)")


@pytest.fixture(scope="module")
def clean_store(sources, tmp_path_factory) -> tuple[Path, float]:
    store = tmp_path_factory.mktemp("clean") / "store"
    return store, _timed(["ingest", *sources["files"], "--store", store])


@pytest.mark.parametrize("fault", [*INGEST_POINTS, "random:0", "random:1", "random:2"])
def test_ingest_killed_then_rerun_equals_a_clean_run(sources, clean_store, tmp_path, fault):
    store, (clean_path, clean_s) = tmp_path / "store", clean_store
    if fault.startswith("random:"):
        args = ["ingest", *sources["files"], "--store", store]
        _kill_mid_run(args, fault, clean_s, lambda: shutil.rmtree(store))
    else:
        code = _run(
            ["ingest", *sources["files"], "--store", store], {"DISTILLGUARD_FAILPOINT": fault}
        )
        assert code == -signal.SIGKILL, f"failpoint {fault} was not reached"
    assert _run(["ingest", *sources["files"], "--store", store]) == 0
    ours, clean = _store_tables(store), _store_tables(clean_path)
    for name in clean:
        assert ours[name].equals(clean[name]), name
    _assert_clean(store, store / ".lock")


def _nightly_args(store: Path, last: date, warehouse: Path, export: Path) -> list:
    first = last - timedelta(days=1)
    return [
        "nightly", "--store", store, "--date", first.isoformat(), "--until", last.isoformat(),
        "--warehouse", warehouse, "--window-days", "3", "--export", export,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def clean_warehouse(sources, clean_store, tmp_path_factory) -> tuple[Path, Path, float]:
    root = tmp_path_factory.mktemp("clean-wh")
    args = _nightly_args(clean_store[0], sources["last"], root / "w.duckdb", root / "export")
    return root / "w.duckdb", root / "export", _timed(args)


@pytest.mark.parametrize("fault", [*NIGHTLY_POINTS, "random:0", "random:1"])
def test_nightly_killed_then_rerun_equals_a_clean_run(
    sources, clean_store, clean_warehouse, tmp_path, fault
):
    warehouse, export = tmp_path / "w.duckdb", tmp_path / "export"
    args = _nightly_args(clean_store[0], sources["last"], warehouse, export)
    if fault.startswith("random:"):

        def reset() -> None:
            for path in (warehouse, Path(f"{warehouse}.wal")):
                path.unlink(missing_ok=True)
            shutil.rmtree(export, ignore_errors=True)

        _kill_mid_run(args, fault, clean_warehouse[2], reset)
    else:
        assert _run(args, {"DISTILLGUARD_FAILPOINT": fault}) == -signal.SIGKILL, fault
    assert _run(args) == 0
    ours, clean = contents(warehouse), contents(clean_warehouse[0])
    assert ours.keys() == clean.keys()
    for name in clean:
        assert ours[name] == clean[name], name
    for table in sorted(clean_warehouse[1].glob("*.parquet")):
        drop = RUN_TIMINGS.get(table.stem, ())
        assert _table([export / table.name], drop).equals(_table([table], drop)), table.name
    _assert_clean(tmp_path, Path(f"{warehouse}.lock"))
