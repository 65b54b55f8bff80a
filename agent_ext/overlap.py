"""Overlap network, decoding and disk I/O.

Three stages run at once: a thread reads the body (socket reads release the GIL), opens a
sealed drive and undoes base64 (the decoder's first stage), the caller's thread inflates
(zlib releases the GIL while inflating), and a thread hashes and writes (hashlib and pwrite
release it too). Queues are bounded, so memory stays a few MiB.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

_DEPTH = 1
_POLL = 0.1
_CLOSE_WAIT = 5.0


class Prefetch:
    """Iterate ``items`` in a background thread, handing them over a bounded queue."""

    def __init__(self, items: Iterable[bytes], depth: int = _DEPTH) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(items),),
                                        name="configdrive-fetch", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: Iterator[bytes]) -> None:
        try:
            for chunk in items:
                if not self._put(("chunk", chunk)):
                    break
            else:
                self._put(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            kind, value = self._queue.get()
            if kind == "chunk":
                yield value
            elif kind == "end":
                return
            else:
                raise value

    def close(self) -> None:
        """Stop fetching. A read already in progress may take up to the read timeout;
        the daemon thread then ends on its own instead of holding up the error."""
        self._stop.set()
        self._thread.join(timeout=_CLOSE_WAIT)


class BackgroundWriter:
    """Feed a DriveWriter from a thread; errors surface on the next call in the caller."""

    def __init__(self, writer: Any, depth: int = _DEPTH) -> None:
        self._writer = writer
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="configdrive-write",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (piece := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write(piece)
                except BaseException as exc:
                    self._error = exc

    def write(self, piece: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(piece)

    def stop(self) -> None:
        """Wait until the thread has handled every queued piece (or skipped them)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self) -> None:
        """Wait until every piece is written; re-raise the first write error."""
        self.stop()
        if self._error is not None:
            raise self._error
