"""Structured logs: loguru with an orjson sink, one JSON object per line.

Every line has `ts`, `level`, `role` (where known), `action` and the message; extra
context (`trigger_id`, `event_id`, `attempt`, `request_id`) comes from `logger.bind`.
Secrets are never passed to the logger: Settings masks them in repr, and request
headers are not logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
from loguru import logger

from eventtrigger.config import Settings


def _json_sink(message: Any) -> None:
    record = message.record
    line: dict[str, Any] = {
        "ts": record["time"].isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "msg": record["message"],
        **record["extra"],
    }
    if record["exception"] is not None:
        line["exception"] = "".join(__import__("traceback").format_exception(*record["exception"]))
    sys.stderr.write(orjson.dumps(line, default=str).decode() + "\n")
    sys.stderr.flush()


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
    if settings.log_format == "json":
        logger.add(_json_sink, level=settings.log_level, enqueue=True, backtrace=False)
    else:
        logger.add(
            sys.stderr,
            level=settings.log_level,
            enqueue=True,
            diagnose=False,  # variable values in tracebacks could hold secrets
            format="{time:HH:mm:ss.SSS} {level:<7} [{extra[action]}] {message} {extra}",
        )
    logger.configure(extra={"action": "-"})
