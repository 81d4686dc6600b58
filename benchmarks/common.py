"""Benchmark helpers: run a command in a child process; wall time and peak RSS."""

from __future__ import annotations

import os
import platform
import subprocess
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
