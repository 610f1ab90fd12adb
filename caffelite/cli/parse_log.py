"""``caffelite parse_log LOGFILE OUTPUT_DIR``: a training log -> CSV tables of its outputs.

Writes ``OUTPUT_DIR/<log name>.train`` and ``OUTPUT_DIR/<log name>.test`` as Caffe's
tools/extra/parse_log.py does, row for row: columns NumIters (a float, "100.0"), Seconds
(from the ``Solving <net>`` line's glog timestamp, across month and year ends),
LearningRate, then one column per net output (``Train net output #k: name = v`` /
``Test net output #k: name = v``); CSV rows with CRLF line ends (Python's csv "excel"
dialect); a table with no rows is not written. Its rules, quirks included, so the tables
equal Caffe's:
- a row starts at the first output line of an iteration and takes the last rate printed
  before it: a training row gets the previous display's rate (the ``Iteration N, lr = R``
  line comes after the outputs), and the first row of each table the second row's;
- a row is kept once it has as many columns as the table's first row, or when the next
  iteration's row starts: a log with a single row, or a cut-off last row, keeps neither;
- values are numbers as ``[.0-9eE+-]+`` reads them: a ``nan`` output is not an output;
- lines without a glog timestamp (or with an impossible date) are skipped.
Logs of caffelite and of Caffe read alike (§5.2 of the reference: same lines, same glog
prefix). Two additions: a log without a ``Solving`` line (Caffe's script fails) counts
Seconds from its first timestamp, and a progress line rewritten with carriage returns does
not hide the log line written over it.
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

_NUM = r"([.\deE+-]+)"
_ITERATION = re.compile(r"Iteration (\d+)")
_TRAIN = re.compile(r"Train net output #(\d+): (\S+) = " + _NUM)
_TEST = re.compile(r"Test net output #(\d+): (\S+) = " + _NUM)
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
    """Rows of one kind of output (train or test), built as Caffe's script builds them."""

    def __init__(self):
        self.rows, self.row = [], None

    def feed(self, match, iteration, seconds, lr):
        if match:
            if self.row is None or self.row["NumIters"] != iteration:
                if self.row is not None:
                    self.rows.append(self.row)
                self.row = OrderedDict(
                    [("NumIters", iteration), ("Seconds", seconds), ("LearningRate", lr)])
            self.row[match.group(2)] = _float(match.group(3))
        if self.row is not None and self.rows and len(self.row) == len(self.rows[0]):
            self.rows.append(self.row)           # as long as the first row: complete
            self.row = None


def parse_log(path):
    """(train_rows, test_rows): lists of OrderedDicts, as Caffe's parse_log.parse_log
    returns them. (``smoothed_loss(path)`` gives the ``Iteration N ..., loss = X`` values,
    which Caffe's tables leave out.)"""
    lines, clock, start, begin = _timeline(path)
    iteration, lr = None, math.nan
    train, test = _Table(), _Table()
    for line in lines[begin:]:
        m = _ITERATION.search(line)
        if m:
            iteration = float(m.group(1))
        if iteration is None:
            continue
        when = clock(line)
        if when is None:
            continue
        seconds = (when - start).total_seconds()
        m = _LR.search(line)
        if m:
            lr = float(m.group(1))
        train.feed(_TRAIN.search(line), iteration, seconds, lr)
        test.feed(_TEST.search(line), iteration, seconds, lr)
    for table in (train, test):
        if len(table.rows) > 1:
            table.rows[0]["LearningRate"] = table.rows[1]["LearningRate"]
    return train.rows, test.rows


def _timeline(path):
    """(lines, clock, start, begin): the log's lines, the clock that reads their glog
    timestamps, the time Seconds count from (the ``Solving`` line's, as Caffe's script; the
    first timestamp when there is none) and the index of the first line after it."""
    lines = _read_lines(path)
    clock = _Clock(_log_year(path, lines))
    first = None
    for k, line in enumerate(lines):
        when = clock(line)  # every line, so that a year end before 'Solving' is counted
        if when is not None and first is None:
            first = when
        if when is not None and "Solving" in line:
            return lines, clock, when, k + 1
    return lines, _Clock(_log_year(path, lines)), first, 0


def display_points(path):
    """{"loss": [(iteration, seconds, loss)], "lr": [(iteration, seconds, rate)]} from the
    ``Iteration N (...), loss = X`` and ``Iteration N, lr = R`` lines (what Caffe's
    parse_log.sh takes for its training table); Seconds as in parse_log, NaN on a line
    without a timestamp."""
    lines, clock, start, begin = _timeline(path)
    out = {"loss": [], "lr": []}
    for line in lines[begin:]:
        when = clock(line)
        seconds = (when - start).total_seconds() if when is not None else math.nan
        m = _LOSS.search(line)
        if m:
            out["loss"].append((int(m.group(1)), seconds, _float(m.group(2))))
        m, it = _LR.search(line), _ITERATION.search(line)
        if m and it:
            out["lr"].append((int(it.group(1)), seconds, float(m.group(1))))
    return out


def smoothed_loss(path):
    """[(iteration, loss)] from the ``Iteration N (...), loss = X`` display lines."""
    return [(it, loss) for it, _, loss in display_points(path)["loss"]]


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
