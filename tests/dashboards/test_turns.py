"""The dashboard's readers-writer lock: page runs share it, a decision waits its turn."""

from __future__ import annotations

import threading
import time

from dashboards.ui import ReadersWriter


def test_readers_share_and_a_writer_waits_for_them():
    lock = ReadersWriter()
    assert lock.acquire_read(1) and lock.acquire_read(1)
    assert not lock.acquire_write(0.05)  # two readers in flight
    lock.release_read()
    lock.release_read()
    assert lock.acquire_write(1)
    assert not lock.acquire_read(0.05)  # the writer keeps new readers out
    lock.release_write()
    assert lock.acquire_read(1)


def test_a_waiting_writer_is_served_before_new_readers():
    lock = ReadersWriter()
    assert lock.acquire_read(1)
    order: list[str] = []

    def writer():
        assert lock.acquire_write(5)
        order.append("write")
        lock.release_write()

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.1)
    assert not lock.acquire_read(0.05)  # a writer is waiting: new page runs queue behind it
    lock.release_read()
    thread.join(5)
    assert order == ["write"]
    assert lock.acquire_read(1)


def test_page_runs_give_their_turn_back(warehouse_file):
    """A page that reads (and one that stops on a message) leaves no reader behind; a leaked
    turn would make every later decision of the server wait and fail."""
    from dashboards import ui
    from tests.dashboards.driver import open_page

    for page, params in [("views/queue.py", {}), ("views/campaign.py", {"id": "cmp_none"})]:
        open_page(page, **params)
    assert ui.turns().acquire_write(1), "a page run kept its read turn"
    ui.turns().release_write()
