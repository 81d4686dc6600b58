"""Named places where a fault-injection test can kill the process outright (SIGKILL).

`hit(name)` does nothing unless the environment variable DISTILLGUARD_FAILPOINT names that
place, in which case the process dies on the spot, as a machine losing power would leave it.
The reliability tests (tests/reliability/) set it to show that a rerun after a kill at every
such place gives the same store and warehouse as a clean run. The names in use are listed in
`NAMES`, so a test can try them all.
"""

from __future__ import annotations

import os
import signal

NAMES = (
    "ingest.staged",  # every source read and staged, nothing committed
    "ingest.requests_published",  # request partitions renamed into place, accounts not yet
    "ingest.accounts_published",  # accounts table replaced, quarantine not yet
    "nightly.scored",  # the night scored, the warehouse transaction not begun
    "nightly.before_commit",  # every table replaced inside the open transaction
    "nightly.committed",  # committed, alerts not yet sent
    "hourly.scored",  # the hour scored, the warehouse transaction not begun
    "hourly.before_commit",  # the hour's rows replaced inside the open transaction
    "warehouse.export_half",  # half the tables exported as Parquet
)


def hit(name: str) -> None:
    """Die here (SIGKILL) when DISTILLGUARD_FAILPOINT is `name`."""
    if os.environ.get("DISTILLGUARD_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
