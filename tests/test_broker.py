"""The embedded broker (`make run`'s default, files under var/celery-broker/) hands a worker whole
messages only: kombu's own filesystem transport lets a worker take a message file before it is written,
and the worker then dies on it (celery/kombu#1551)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection
from kombu.transport import filesystem

from trustview import broker


def channel(transport: type, folder: Path) -> Any:
    connection = Connection(
        "filesystem://",
        transport=transport,
        transport_options={"data_folder_in": str(folder), "data_folder_out": str(folder)},
    )
    return connection.default_channel


@pytest.fixture
def while_a_message_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Callable[[], None]], None]:
    """Runs a callback at the moment a message is being put: after its file exists under any name,
    before its content is complete. (kombu locks the new file before writing it; trustview's renames
    the written file into place.)"""
    callbacks: list[Callable[[], None]] = []

    def at_that_moment(callback: Callable[[], None]) -> None:
        callbacks.append(callback)

    real_lock, real_replace = filesystem.lock, broker.os.replace

    def lock(file: Any, flags: int) -> None:
        real_lock(file, flags)
        for callback in callbacks:
            callback()

    def replace(source: str, target: str) -> None:
        for callback in callbacks:
            callback()
        real_replace(source, target)

    monkeypatch.setattr(filesystem, "lock", lock)
    monkeypatch.setattr(broker.os, "replace", replace)
    return at_that_moment


def test_kombus_own_transport_hands_out_an_empty_message(tmp_path, while_a_message_is_written):
    """The fault this module exists for, shown on kombu's transport, so the test below means something."""
    producer, consumer = channel(filesystem.Transport, tmp_path), channel(filesystem.Transport, tmp_path)
    seen: list[Any] = []
    while_a_message_is_written(lambda: seen.append(_take(consumer)))
    producer._put("celery", {"task": "renewal-sweep"})
    assert isinstance(seen[0], json.JSONDecodeError)


def test_a_worker_never_sees_a_message_before_it_is_whole(tmp_path, while_a_message_is_written):
    producer, consumer = channel(broker.Transport, tmp_path), channel(broker.Transport, tmp_path)
    seen: list[Any] = []
    while_a_message_is_written(lambda: seen.append(_take(consumer)))
    producer._put("celery", {"task": "renewal-sweep"})
    assert seen == ["empty"]  # while it was written, there was nothing to take
    assert consumer._get("celery") == {"task": "renewal-sweep"}  # then the whole message
    assert _take(consumer) == "empty" and not list(tmp_path.iterdir())  # taken once, nothing left behind


def _take(consumer: Any) -> Any:
    """What a worker's poll of the queue gets: the message, "empty", or the error it would die of."""
    try:
        return consumer._get("celery")
    except Empty:
        return "empty"
    except json.JSONDecodeError as error:
        return error
