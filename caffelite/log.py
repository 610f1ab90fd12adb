"""Caffe-style (glog) log lines: ``I1127 12:34:56.789012 12345 file.cpp:NNN] message``.

Numbers in messages are formatted with ``g6`` (C++ ostream's default: 6 significant digits)
so tools that parse Caffe logs (parse_log) read ours unchanged.
"""
import logging
import os
import sys
import threading
import time

_LEVEL_CHAR = {logging.DEBUG: "I", logging.INFO: "I", logging.WARNING: "W",
               logging.ERROR: "E", logging.CRITICAL: "F"}


class GlogFormatter(logging.Formatter):
    def format(self, record):
        t = record.created
        stamp = time.strftime("%m%d %H:%M:%S", time.localtime(t))
        micros = int((t - int(t)) * 1e6)
        tid = threading.get_native_id() % 100000
        where = f"{os.path.basename(record.pathname)}:{record.lineno}"
        return (f"{_LEVEL_CHAR.get(record.levelno, 'I')}{stamp}.{micros:06d} {tid:5d} "
                f"{where}] {record.getMessage()}")


logger = logging.getLogger("caffelite")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each record (it may be replaced)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def init_log(level=logging.INFO, stream=None):
    """Send caffelite's log to ``stream`` (default: the current stderr) in glog format;
    safe to call twice."""
    logger.setLevel(level)
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(GlogFormatter())
    logger.addHandler(handler)
    logger.propagate = False


def g6(x):
    """C++ default ostream float formatting (6 significant digits)."""
    return f"{float(x):.6g}"
