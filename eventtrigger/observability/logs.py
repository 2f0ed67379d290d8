"""Structured logs: loguru with an orjson sink, one JSON object per line.

Every line has `ts`, `level`, `role` (where known), `action` and the message; extra
context (`trigger_id`, `event_id`, `attempt`, `request_id`) comes from `logger.bind`.
Secrets are never passed to the logger: Settings masks them in repr, and request
headers are not logged.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time
import traceback
from typing import Any, TextIO

import orjson
from loguru import logger

from eventtrigger.config import Settings


class _Writer:
    """Lines go onto an in-memory queue; one thread writes them to the stream in batches.

    The event loop never blocks on a slow stderr, and nothing is pickled: loguru's own
    `enqueue=True` pickles every record through a multiprocessing pipe, which cost about
    a fifth of the event loop's time under webhook load (py-spy, see docs/design.md).
    """

    _STOP = object()
    PAUSE = 0.02

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, line: str) -> None:
        self._lines.put(line)

    def _drain(self) -> None:
        while True:
            batch = [self._lines.get()]
            while True:  # take whatever else is waiting: one write per burst
                try:
                    batch.append(self._lines.get_nowait())
                except queue.Empty:
                    break
            stop = self._STOP in batch
            self._stream.write("".join(x for x in batch if isinstance(x, str)))
            self._stream.flush()
            if stop:
                return
            # Let lines gather before the next write: woken for every line, this thread
            # took the GIL from the event loop a few thousand times a second under load
            # (about a seventh of the API process in py-spy, S4). Lines wait 20 ms at most.
            time.sleep(self.PAUSE)

    def close(self, timeout: float = 5.0) -> None:
        """Write out what is queued (at exit; a killed process loses its last lines)."""
        if self._thread.is_alive():
            self._lines.put(self._STOP)
            self._thread.join(timeout)


def _json_line(message: Any) -> str:
    record = message.record
    line: dict[str, Any] = {
        "ts": record["time"].isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "msg": record["message"],
        **record["extra"],
    }
    if record["exception"] is not None:
        line["exception"] = "".join(traceback.format_exception(*record["exception"]))
    return orjson.dumps(line, default=str).decode() + "\n"


class _Intercept(logging.Handler):
    """Route the standard library's logging (uvicorn, aiokafka, asyncmy) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        level: str | int = record.levelname if record.levelname in _LEVELS else record.levelno
        logger.opt(exception=record.exc_info).bind(action=record.name).log(
            level, record.getMessage()
        )


_LEVELS = {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(handlers=[_Intercept()], level=logging.INFO, force=True)
    # asyncmy logs every server note ("database exists") as a warning; they are not ours.
    logging.getLogger("asyncmy").setLevel(logging.ERROR)
    logger.remove()
    writer = _Writer(sys.stderr)
    if settings.log_format == "json":
        logger.add(
            lambda message: writer.write(_json_line(message)),
            level=settings.log_level,
            backtrace=False,
        )
    else:
        logger.add(
            writer.write,
            level=settings.log_level,
            diagnose=False,  # variable values in tracebacks could hold secrets
            format="{time:HH:mm:ss.SSS} {level:<7} [{extra[action]}] {message} {extra}",
        )
    logger.configure(extra={"action": "-"})
