"""Serving an API process: uvicorn in the foreground, with exit status 0 after a requested stop."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

logger = logging.getLogger(__name__)


def serve_until_signalled(app: FastAPI, name: str, host: str, port: int) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, finish open requests, then exit with status 0.

    After its graceful shutdown uvicorn raises the received signal again, under the handlers that
    were installed before it started. These handlers turn that signal into exit status 0, so a
    supervisor records a requested stop as a clean exit and not as a crash (status 143).
    """
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, _exit_with_status_zero)
    logger.info("%s starting on %s:%s", name, host, port)
    uvicorn.run(app, host=host, port=port, log_config=None)


def _exit_with_status_zero(signal_number: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
