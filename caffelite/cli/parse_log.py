"""``caffelite parse_log LOGFILE OUTPUT_DIR``: a training log -> CSV tables of its outputs.

Writes ``OUTPUT_DIR/<log name>.train`` and ``OUTPUT_DIR/<log name>.test`` in the format of
Caffe's tools/extra/parse_log.py: columns NumIters, Seconds, LearningRate, then one column
per net output (``Train net output #k: name = v`` / ``Test net output #k: name = v``), one
row per display or test. NumIters is written as a float ("100.0") as Caffe's script
writes it; Seconds counts from the ``Solving <net>`` line's glog timestamp (or the first
timestamp when there is none), across month and year ends; rows are CSV with CRLF line
ends (Python's csv "excel" dialect), and a table with no rows is not written.

Logs of caffelite and of Caffe read alike (§5.2 of the reference: same lines, same glog
prefix). Where Caffe's script was wrong, this one differs:
- the ``Iteration N, lr = R`` line that follows the training outputs of iteration N gives
  that row its LearningRate (Caffe's script gave it the previous display's rate);
- a log with a single row keeps it, and the last row of a cut-off log is kept too;
- ``nan``/``inf`` outputs become NaN/inf values instead of being dropped;
- progress lines rewritten with carriage returns do not hide the log line after them.
The first test row, tested before any rate is printed, takes the second row's rate, as in
Caffe's script.
"""
import csv
import datetime
import math
import os
import re
from collections import OrderedDict

from ..errors import CaffeliteError
from ..log import logger
from .flags import new_parser
from .main import command

_NUM = r"([-+]?(?:nan|inf|infinity)|[.\deE+-]+)"
_ITERATION = re.compile(r"Iteration (\d+)")
_TRAIN = re.compile(r"Train net output #(\d+): (\S+) = " + _NUM, re.IGNORECASE)
_TEST = re.compile(r"Test net output #(\d+): (\S+) = " + _NUM, re.IGNORECASE)
_LR = re.compile(r"lr = ([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)")
_LOSS = re.compile(r"Iteration (\d+)(?: \([^)]*\))?, loss = " + _NUM, re.IGNORECASE)
_STAMP = re.compile(r"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{1,6})\s")
_CREATED = re.compile(r"^Log file created at: (\d{4})/(\d\d)/(\d\d)")


def _float(text):
    try:
        return float(text)
    except ValueError:
        return math.nan


class _Clock:
    """glog timestamps (month, day, time; no year) -> datetimes, counting year ends."""

    def __init__(self, year):
        self.year, self.last_month = year, None

    def __call__(self, line):
        m = _STAMP.match(line)
        if not m:
            return None
        month, day, hour, minute, second = (int(g) for g in m.groups()[:5])
        micro = int(m.group(6).ljust(6, "0"))
        if self.last_month is not None and month < self.last_month:
            self.year += 1
        try:
            when = datetime.datetime(self.year, month, day, hour, minute, second, micro)
        except ValueError:  # e.g. 29 February in a guessed year
            return None
        self.last_month = month
        return when


def _log_year(path, lines):
    """The year the log starts in: glog's file header when present, else the year the
    file was last changed (Caffe's script used the file's ctime)."""
    for line in lines[:5]:
        m = _CREATED.match(line)
        if m:
            return int(m.group(1))
    return datetime.datetime.fromtimestamp(os.path.getmtime(path)).year


class _Table:
    """Rows of one kind of output (train or test), in the order they were logged."""

    def __init__(self):
        self.rows, self.row = [], None

    def add(self, iteration, seconds, lr, name, value):
        row = self.row
        if row is None or row["NumIters"] != iteration or name in row:
            self.flush()
            row = self.row = OrderedDict(
                [("NumIters", iteration), ("Seconds", seconds), ("LearningRate", lr)])
        row[name] = value

    def flush(self):
        if self.row is not None:
            self.rows.append(self.row)
            self.row = None

    def last(self):
        return self.row if self.row is not None else (self.rows[-1] if self.rows else None)


def parse_log(path):
    """(train_rows, test_rows): lists of OrderedDicts, as Caffe's parse_log.parse_log
    returns them. (``smoothed_loss(path)`` gives the ``Iteration N ..., loss = X`` values,
    which Caffe's tables leave out.)"""
    lines = _read_lines(path)
    clock = _Clock(_log_year(path, lines))
    start = None
    for line in lines:
        when = clock(line)  # every line, so that a year end before 'Solving' is counted
        if when is not None and "Solving" in line:
            start = when
            break
    clock = _Clock(_log_year(path, lines))
    iteration, lr = None, math.nan
    train, test = _Table(), _Table()
    for line in lines:
        m = _ITERATION.search(line)
        if m:
            iteration = float(m.group(1))
        when = clock(line)
        if start is None and when is not None:
            start = when
        if iteration is None:
            continue
        seconds = (when - start).total_seconds() if when is not None and start else math.nan
        m = _LR.search(line)
        if m:
            lr = float(m.group(1))
            last = train.last()
            if last is not None and last["NumIters"] == iteration:
                last["LearningRate"] = lr  # the rate printed after the row's outputs
        for regex, table in ((_TRAIN, train), (_TEST, test)):
            m = regex.search(line)
            if m:
                table.add(iteration, seconds, lr, m.group(2), _float(m.group(3)))
    train.flush()
    test.flush()
    for table in (train, test):
        if len(table.rows) > 1 and math.isnan(table.rows[0]["LearningRate"]):
            table.rows[0]["LearningRate"] = table.rows[1]["LearningRate"]
    return train.rows, test.rows


def smoothed_loss(path):
    """[(iteration, loss)] from the ``Iteration N (...), loss = X`` display lines."""
    out = []
    for line in _read_lines(path):
        m = _LOSS.search(line)
        if m:
            out.append((int(m.group(1)), _float(m.group(2))))
    return out


def _read_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise CaffeliteError(f"parse_log: cannot read the log file '{path}' "
                             f"({e.strerror or e})") from None
    # a live progress line ends in '\r' and the next log line is written over it
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n")]


def _fieldnames(rows):
    names = []
    for row in rows:
        for k in row:
            if k not in names:
                names.append(k)
    return names


def write_csv(path, rows, delimiter=","):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_fieldnames(rows), dialect="excel",
                                delimiter=delimiter, restval="")
        writer.writeheader()
        writer.writerows(rows)


def save_csv_files(log_path, output_dir, train_rows, test_rows, delimiter=","):
    """Write ``<log name>.train`` and ``.test`` into output_dir; returns the paths written."""
    os.makedirs(output_dir, exist_ok=True)
    base = os.path.basename(log_path)
    written = []
    for suffix, rows in ((".train", train_rows), (".test", test_rows)):
        out = os.path.join(output_dir, base + suffix)
        if not rows:
            logger.info("Not writing %s; no lines to write", out)
            continue
        write_csv(out, rows, delimiter)
        logger.info("Wrote %d rows to %s", len(rows), out)
        written.append(out)
    return written


@command("parse_log", "parse a training log into CSV tables of train and test outputs")
def parse_log_command(argv):
    parser = new_parser("caffelite parse_log",
                        "Parse a Caffe or caffelite training log into two CSV files, "
                        "<log name>.train and <log name>.test, in OUTPUT_DIR.")
    parser.add_argument("logfile_path", metavar="LOGFILE")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR")
    parser.add_argument("--delimiter", default=",", help="column delimiter (default ',')")
    parser.add_argument("--verbose", action="store_true", help="(accepted; always logs)")
    args = parser.parse_args(argv)
    if len(args.delimiter) != 1:
        raise CaffeliteError(f"parse_log: --delimiter must be one character, got "
                             f"'{args.delimiter}'")
    train_rows, test_rows = parse_log(args.logfile_path)
    save_csv_files(args.logfile_path, args.output_dir, train_rows, test_rows, args.delimiter)
    return 0
