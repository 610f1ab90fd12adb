"""glog's flags, which Caffe's tools take anywhere on the command line (``-log_dir DIR``,
``-minloglevel 1``, ``-logtostderr``, ``-v 2``, ...), and their ``GLOG_<flag>`` variables.

What they do here, as in a Caffe tool (whose main sets ``alsologtostderr``):
  * every message at or above ``minloglevel`` (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL) goes to
    stderr; with ``-alsologtostderr=false`` only those at or above ``stderrthreshold``
    (default 2) do;
  * with ``log_dir`` (and not ``logtostderr``) the log is also written to glog's file
    ``<log_dir>/caffelite.<host>.<user>.log.INFO.<yyyymmdd-hhmmss>.<pid>``, with the
    symlink ``caffelite.INFO`` pointing at it. Without ``log_dir`` no file is written
    (glog would pick a temporary folder);
  * the rest (``v``, ``vmodule``, ``logbufsecs``, ...) are accepted and have no effect:
    caffelite has no verbose-level messages and does not buffer its log.
"""
import getpass
import logging
import os
import socket
import time

from ..errors import CaffeliteError
from ..log import GlogFormatter, logger

BOOL_FLAGS = {"logtostderr": False, "alsologtostderr": True, "colorlogtostderr": False,
              "stop_logging_if_full_disk": False, "log_prefix": True,
              "timestamp_in_logfile_name": True}
VALUE_FLAGS = {"minloglevel": "0", "stderrthreshold": "2", "log_dir": "", "v": "0",
               "vmodule": "", "logbuflevel": "0", "logbufsecs": "30", "max_log_size": "1800",
               "log_link": ""}
_LEVELS = (logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
_TRUE, _FALSE = ("1", "true", "yes", "t", "y"), ("0", "false", "no", "f", "n")


def _bool(name, text):
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise CaffeliteError(f"flag -{name}: '{text}' is not a boolean (true/false, 1/0)")


def split(argv):
    """(argv without glog's flags, {flag: value}); ``argv`` already normalised to
    ``--name`` / ``--name=value`` (see flags.normalise). Unset flags take ``GLOG_<name>``
    from the environment, then glog's defaults."""
    settings, rest, i = {}, [], 0
    while i < len(argv):
        a = argv[i]
        name, eq, value = a[2:].partition("=") if a.startswith("--") else ("", "", "")
        if name in BOOL_FLAGS:
            settings[name] = _bool(name, value) if eq else True
        elif name.startswith("no") and name[2:] in BOOL_FLAGS and not eq:
            settings[name[2:]] = False
        elif name in VALUE_FLAGS:
            if not eq:
                if i + 1 >= len(argv):
                    raise CaffeliteError(f"flag -{name} needs a value")
                i += 1
                value = argv[i]
            settings[name] = value
        else:
            rest.append(a)
        i += 1
    for name, default in {**BOOL_FLAGS, **VALUE_FLAGS}.items():
        if name not in settings:
            env = os.environ.get(f"GLOG_{name}")
            if env is None:
                settings[name] = default
            else:
                settings[name] = _bool(name, env) if name in BOOL_FLAGS else env
    return rest, settings


def _level(name, text):
    try:
        level = int(text)
    except ValueError:
        raise CaffeliteError(f"flag -{name}: '{text}' is not a log level (0 INFO, 1 WARNING, "
                             f"2 ERROR, 3 FATAL)") from None
    return _LEVELS[min(max(level, 0), 3)]


def apply(settings):
    """Set caffelite's log up as ``settings`` (from split) say; returns the log file's path
    or None."""
    minimum = _level("minloglevel", settings["minloglevel"])
    logger.setLevel(minimum)
    to_stderr = settings["logtostderr"] or settings["alsologtostderr"]
    threshold = minimum if to_stderr else max(
        minimum, _level("stderrthreshold", settings["stderrthreshold"]))
    for h in logger.handlers:
        h.setLevel(threshold)
    folder = settings["log_dir"]
    if not folder or settings["logtostderr"]:
        return None
    if not os.path.isdir(folder):
        raise CaffeliteError(f"flag -log_dir: '{folder}' is not a folder")
    now = time.localtime()
    base = (f"caffelite.{socket.gethostname()}.{getpass.getuser()}.log.INFO."
            f"{time.strftime('%Y%m%d-%H%M%S', now)}.{os.getpid()}")
    path = os.path.join(folder, base)
    with open(path, "w", encoding="utf-8") as f:      # glog's header
        f.write(f"Log file created at: {time.strftime('%Y/%m/%d %H:%M:%S', now)}\n"
                f"Running on machine: {socket.gethostname()}\n"
                "Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg\n")
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(GlogFormatter())
    handler.setLevel(minimum)
    logger.addHandler(handler)
    link = os.path.join(folder, "caffelite.INFO")
    try:
        if os.path.islink(link):
            os.remove(link)
        os.symlink(base, link)
    except OSError:
        pass                                  # glog, too, carries on without its symlink
    return path
