"""pycaffe's remaining module-level functions: log set-up, the multi-GPU bookkeeping, Timer.

Caffe's ``python/train.py`` (multi-GPU training from Python) and other scripts call these.
caffelite trains in one process on one device, so the solver count and rank are numbers a
script can set and read back, and NCCL is what a Caffe built without NCCL offers:
``has_nccl()`` is False and ``NCCL(solver, uid)`` constructs an object that does nothing
(no ``new_uid``, no ``bcast``).
"""
import logging
import time

from .errors import CaffeliteError
from .log import init_log as _init_log_stream, logger

# glog's severities, as pycaffe's init_log(level) takes them
_GLOG_LEVELS = {0: logging.INFO, 1: logging.WARNING, 2: logging.ERROR, 3: logging.CRITICAL}


def init_log(level=0, stderr=False):
    """Set up Caffe's log: messages below ``level`` (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL)
    are dropped. glog would write to log files unless ``stderr``; caffelite keeps no log
    files and writes to stderr either way."""
    if level not in _GLOG_LEVELS:
        raise CaffeliteError(f"init_log: level must be 0 (INFO), 1 (WARNING), 2 (ERROR) or "
                             f"3 (FATAL), got {level!r}")
    _init_log_stream(_GLOG_LEVELS[level])


def log(message):
    """One INFO line in Caffe's log format (pycaffe's ``caffe.log``), naming the caller."""
    if not logger.handlers:       # like glog before InitGoogleLogging: straight to stderr
        init_log()
    logger.info(str(message), stacklevel=2)


_solvers = {"count": 1, "rank": 0, "multiprocess": False}


def _count(what, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise CaffeliteError(f"{what} must be an integer >= {low}, got {value!r}")
    return value


def solver_count():
    return _solvers["count"]


def set_solver_count(count):
    _solvers["count"] = _count("solver count", count, 1)


def solver_rank():
    return _solvers["rank"]


def set_solver_rank(rank):
    _solvers["rank"] = _count("solver rank", rank, 0)


def set_multiprocess(multiprocess):
    _solvers["multiprocess"] = bool(multiprocess)


def has_nccl():
    """False: caffelite has no NCCL (one process, one device)."""
    return False


class NCCL:
    """What Caffe without NCCL offers: the constructor takes a solver and a uid and does
    nothing."""

    def __init__(self, solver, uid):
        self.solver, self.uid = solver, uid


class Timer:
    """Caffe's CPU timer: ``start()``, ``stop()`` and ``ms``, the milliseconds between
    them. As in Caffe, start() on a running timer and stop() on a stopped one do nothing,
    reading ``ms`` stops a running timer, and a timer never started reads 0 with a
    warning."""

    def __init__(self):
        self._running = False
        self._started = None
        self._stopped = None

    def start(self):
        if not self._running:
            self._started = time.perf_counter()
            self._running = True

    def stop(self):
        if self._running:
            self._stopped = time.perf_counter()
            self._running = False

    @property
    def ms(self):
        if self._started is None:
            logger.warning("Timer has never been run before reading time.")
            return 0.0
        self.stop()
        return (self._stopped - self._started) * 1000.0
