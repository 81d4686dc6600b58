"""Wall time per named stage of a run, for `distillguard --profile` and the benchmarks.

Code marks its stages with `stage("signals: compute")`; nothing is recorded (and nearly nothing
is spent) unless a caller opened `recording()`. Stages may nest; each records its own wall time,
so nested stages are shown indented under their parent rather than added to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Record:
    """Seconds and calls per stage, in the order stages were first entered, with their depth."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    depth: dict[str, int] = field(default_factory=dict)
    _open: int = 0

    def rows(self) -> list[tuple[str, int, float, int]]:
        """(stage, depth, seconds, calls) in first-entered order."""
        return [(n, self.depth[n], s, self.calls[n]) for n, s in self.seconds.items()]

    def as_dict(self, total: float) -> dict:
        """The record as JSON-ready data, with the run's whole wall time."""
        stages = [
            {"stage": n, "depth": d, "seconds": round(s, 4), "calls": c}
            for n, d, s, c in self.rows()
        ]
        return {"wall_seconds": round(total, 4), "stages": stages}


_current: Record | None = None


@contextmanager
def recording() -> Iterator[Record]:
    """Record every stage entered until the block ends (one recording at a time)."""
    global _current
    outer, _current = _current, Record()
    try:
        yield _current
    finally:
        _current = outer


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as `name` when a recording is open; otherwise only run it."""
    record = _current
    if record is None:
        yield
        return
    record.depth.setdefault(name, record._open)
    record._open += 1
    start = time.perf_counter()
    try:
        yield
    finally:
        record._open -= 1
        record.seconds[name] = record.seconds.get(name, 0.0) + time.perf_counter() - start
        record.calls[name] = record.calls.get(name, 0) + 1
