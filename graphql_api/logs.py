"""JSON log lines: one object per line with time (UTC, ISO 8601), level, logger, message, the
request id and the GraphQL operation (from graphql_api/log_context.py; null outside a request),
and the traceback as `exception` when there is one. `serve` writes them to stderr."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from graphql_api.log_context import current_operation, request_id_var

__all__ = ["JsonFormatter", "log_config"]


class JsonFormatter(logging.Formatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # These lines carry no source location, thread or process: don't make every record
        # collect them (finding the caller walks the stack; about a tenth of a request's logging).
        logging._srcfile = None
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
            "operation": current_operation(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(line).decode()
        except TypeError:  # what orjson refuses (an integer past 64 bits in a message's args is text by now)
            return json.dumps(line, ensure_ascii=False, default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A logging.config.dictConfig for uvicorn (`log_config=`): uvicorn applies it in every
    worker process, so `--workers N` logs the same way as one."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "graphql_api.logs.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "graphql_api": {"handlers": ["stderr"], "level": level, "propagate": False},
            "ledger": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }
