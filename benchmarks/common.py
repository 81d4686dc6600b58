"""Benchmark helpers: run a command in a child process; wall time and peak RSS."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float


def _peak_kib(pid: int) -> int:
    """VmHWM (peak resident set since exec) of a running process, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(argv: list[str], env: dict | None = None, cwd=None) -> Measured:
    """Run argv to completion; wall seconds and the child's peak resident memory.

    Peak memory is sampled from /proc (VmHWM) every 20 ms: getrusage's ru_maxrss would count
    the parent's pages copied between fork and exec, inflating small commands.
    """
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors, env=env, cwd=cwd)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _peak_kib(proc.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{argv} failed: {errors.read().decode()[-2000:]}")
    return Measured(seconds, peak / 1024)


BARE_SCAN = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET memory_limit='4GB'")
con.sql(f'''SELECT account_id, count(*), sum(length(prompt)), sum(length(system)), max(ts),
  count(DISTINCT source_ip), count(DISTINCT api_key_id), count(DISTINCT user_agent),
  count(DISTINCT request_model), sum(usage_input_tokens), sum(usage_output_tokens), sum(n_tools),
  sum(thinking_budget_tokens), sum(status_code), count(end_user_id), count(session_id)
FROM read_parquet('{sys.argv[1]}') GROUP BY account_id''').fetchall()
"""


def bare_scan(glob: str) -> list[str]:
    """argv of the floor every feature benchmark compares with: DuckDB reads and decodes the
    request columns the features need (files matching `glob`) and does one group-by."""
    return [sys.executable, "-c", BARE_SCAN, glob]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"
