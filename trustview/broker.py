"""The embedded Celery broker of `make run` (files under var/celery-broker/), with whole messages only.

kombu's filesystem transport creates a message file under its final name and then writes it. A worker
that lists the folder in between takes the empty file, fails to decode it ("Expecting value: line 1
column 1 (char 0)", celery/kombu#1551) and stops with an unrecoverable error; the message is lost. Here a
message is written under a name the consumer does not read (it reads only NAME.QUEUE.msg) and renamed to
its final name when complete, which is atomic within one file system.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put `payload` onto `queue` as kombu does, but so that it appears whole or not at all."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # ".partial-..." partitions to "partial-...", never "QUEUE.msg": consumers pass it by.
        partial = os.path.join(self.data_folder_out, f".partial-{uuid.uuid4()}")
        try:
            with open(partial, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
