"""Helpers the dataset tools share: gflags-style boolean flags, an LMDB writer that grows
its map as needed, and a progress line for terminals."""
import os
import shutil
import sys
import time

from ..errors import CaffeliteError
from ..log import logger

_TRUE = ("", "1", "true", "t", "yes", "y")
_FALSE = ("0", "false", "f", "no", "n")


def bool_flags(argv, names):
    """gflags' spellings of boolean flags (``--gray``, ``--gray=true``, ``--gray=false``,
    ``--nogray``) turned into argparse's ``--gray`` present or absent."""
    out = []
    for arg in argv:
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name in names:
            v = value.lower()
            if not eq or v in _TRUE:
                out.append("--" + name)
            elif v not in _FALSE:
                raise CaffeliteError(f"--{name}: expected true or false, got '{value}'")
            continue
        if name.startswith("no") and name[2:] in names and not eq:
            continue
        out.append(arg)
    return out


def check_backend(tool, backend, verb="writes"):
    if backend.lower() == "leveldb":
        raise CaffeliteError(f"{tool}: caffelite {verb} LMDB only (LevelDB is not supported); "
                             f"use --backend lmdb")
    if backend.lower() != "lmdb":
        raise CaffeliteError(f"{tool}: unknown backend '{backend}' (caffelite {verb} lmdb)")


def _lmdb():
    try:
        import lmdb
    except ImportError:
        raise CaffeliteError("writing LMDB databases needs the lmdb package: "
                             "pip install lmdb") from None
    return lmdb


class LMDBWriter:
    """A new LMDB directory written in transactions of ``commit_every`` records.

    The memory map starts small and doubles whenever a transaction does not fit, so no
    terabyte-sized map is reserved up front. ``discard()`` removes a half-written database
    (it was created by this writer, so nothing else is lost)."""

    def __init__(self, path, commit_every=None, map_size=1 << 28):
        self.path = os.fspath(path)
        self.commit_every = commit_every or 1000
        if os.path.exists(self.path):
            raise CaffeliteError(f"{self.path}: already exists; remove it first "
                                 f"(the database is created anew)")
        lmdb = _lmdb()
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        try:
            self.env = lmdb.open(self.path, map_size=map_size, subdir=True)
        except lmdb.Error as e:
            raise CaffeliteError(f"{self.path}: cannot create the LMDB ({e})") from None
        self.pending, self.count = [], 0

    def put(self, key, value):
        """Add one record; returns True when this put committed a transaction."""
        self.pending.append((key if isinstance(key, bytes) else key.encode("utf-8"), value))
        self.count += 1
        if len(self.pending) >= self.commit_every:
            self.commit()
            return True
        return False

    def commit(self):
        if not self.pending:
            return
        lmdb = _lmdb()
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in self.pending:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)
        self.pending = []

    def close(self):
        self.commit()
        self.env.close()

    def discard(self):
        self.pending = []
        self.env.close()
        shutil.rmtree(self.path, ignore_errors=True)


class Progress:
    """``count/total, rate/s, ETA`` on one rewritten stderr line, only on a terminal."""

    def __init__(self, total, unit, stream=None):
        self.total, self.unit = total, unit
        self.stream = stream or sys.stderr
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.t0 = self.last = time.perf_counter()
        self.shown = False

    def update(self, count, force=False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        rate = count / max(now - self.t0, 1e-9)
        left = (self.total - count) / rate if rate > 0 else 0.0
        self.stream.write(f"\r{count}/{self.total} {self.unit}, {rate:.1f}/s, ETA "
                          f"{int(left // 60)}m{int(left % 60):02d}s ")
        self.stream.flush()
        self.shown = True

    def clear(self):
        """Blank the progress line so that a log line can be written in its place."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def log(self, msg, *args):
        self.clear()
        logger.info(msg, *args)
