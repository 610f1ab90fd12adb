"""``caffelite download_model_binary models/<name>``: Caffe's scripts/download_model_binary.py.

The model directory's ``readme.md`` starts with YAML front matter between two ``---`` lines;
the keys ``caffemodel`` (file name), ``caffemodel_url`` and ``sha1`` are required. The weights
are downloaded to ``<dir>/<caffemodel>.part`` (resumed with an HTTP Range request when a
``.part`` is already there), checked against the SHA-1 and only then renamed to their final
name, so a corrupt or truncated file never sits under the final name.
"""
import hashlib
import os
import sys
import time
import urllib.error
import urllib.request

from ..errors import CaffeliteError
from ..log import logger
from .flags import new_parser
from .main import command

REQUIRED_KEYS = ("caffemodel", "caffemodel_url", "sha1")
UNKNOWN_SHA1 = ("", "unknown", "none", "null", "~")
CHUNK = 1 << 16


class DownloadError(CaffeliteError):
    """A download that failed or did not verify; the message says what to do."""


class Interrupted(DownloadError):
    """The connection ended before the whole file arrived; the .part file is kept."""


def parse_front_matter(readme):
    """The ``key: value`` lines between the first two ``---`` lines of ``readme``, as a dict.

    Only flat scalars are read (what model zoo readmes use): quotes around a value are
    removed, ``#`` comments and blank lines are skipped.
    """
    try:
        with open(readme, encoding="utf-8") as f:
            lines = [line.rstrip("\r\n") for line in f]
    except FileNotFoundError:
        raise CaffeliteError(f"{readme}: no such file (a model directory needs a readme.md "
                             f"with YAML front matter)") from None
    marks = [i for i, line in enumerate(lines) if line.strip() == "---"]
    if len(marks) < 2:
        raise CaffeliteError(f"{readme}: no YAML front matter (expected 'key: value' lines "
                             f"between two '---' lines)")
    front = {}
    for number in range(marks[0] + 1, marks[1]):
        line = lines[number].strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise CaffeliteError(f"{readme}:{number + 1}: expected 'key: value', got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        front[key.strip()] = value
    return front


def _human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """A progress bar on stderr: bytes, percentage, rate and ETA.

    On a terminal it redraws one line (at most every 0.1 s); otherwise it writes a line every
    10% so logs stay short.
    """

    def __init__(self, total, start=0, stream=None):
        self.total, self.done, self.start = total, start, start
        self.stream = stream or sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.t0 = self.last = time.perf_counter()
        self.next_decile = 1

    def line(self):
        elapsed = max(time.perf_counter() - self.t0, 1e-6)
        rate = (self.done - self.start) / elapsed
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            eta_text = _clock(eta) if eta != float("inf") else "--:--:--"
            return (f"[{bar:<30}] {frac * 100:5.1f}% {_human(self.done)} / "
                    f"{_human(self.total)} {_human(rate)}/s ETA {eta_text}")
        return f"{_human(self.done)} {_human(rate)}/s"

    def update(self, n):
        self.done += n
        now = time.perf_counter()
        if self.tty:
            if now - self.last >= 0.1:
                self.last = now
                self.stream.write("\r" + self.line() + " ")
                self.stream.flush()
        elif self.total and self.done * 10 >= self.next_decile * self.total:
            while self.done * 10 >= self.next_decile * self.total:
                self.next_decile += 1
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()


def sha1_of(path):
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url, part, timeout, stream):
    """Download ``url`` into ``part``, resuming from its current size when the server
    honours Range; raises Interrupted if the body ends early."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "caffelite"})
    if have and url.lower().startswith(("http:", "https:")):
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # nothing left to send: the .part is complete already (or bigger than the file)
            logger.info("The server has nothing after byte %d; checking the partial file", have)
            return
        raise DownloadError(f"{url}: HTTP error {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"{url}: cannot connect: {reason}") from None
    with response:
        status = getattr(response, "status", None) or response.getcode()
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if have and status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {have}-"):
                raise DownloadError(f"{url}: the server answered the range request for bytes "
                                    f"{have}- with '{content_range}'; delete {part} and retry")
            mode, start = "ab", have
            logger.info("Resuming the download at byte %d", have)
        else:
            if have:
                logger.info("The server does not support resuming; downloading from the start")
            mode, start = "wb", 0
        total = start + length if length is not None else None
        progress = Progress(total, start, stream)
        received = 0
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except Exception as e:   # IncompleteRead, reset, timeout ...
                        raise Interrupted(f"{url}: the connection broke after "
                                          f"{_human(start + received)}: {e!r}") from None
                    if not block:
                        break
                    f.write(block)
                    received += len(block)
                    progress.update(len(block))
        finally:
            progress.close()
        if length is not None and received < length:
            raise Interrupted(f"{url}: the connection closed after {_human(start + received)} "
                              f"of {_human(start + length)}")


def download_model_binary(model_dir, retries=2, timeout=60.0, stream=None):
    """Download and verify the weights a model directory's readme names; returns their path."""
    readme = os.path.join(model_dir, "readme.md")
    front = parse_front_matter(readme)
    missing = [k for k in REQUIRED_KEYS if not front.get(k)]
    if missing:
        raise CaffeliteError(f"{readme}: the front matter lacks "
                             f"{', '.join(repr(k) for k in missing)} (required: "
                             f"{', '.join(REQUIRED_KEYS)})")
    name, url, sha1 = front["caffemodel"], front["caffemodel_url"], front["sha1"].lower()
    if os.path.basename(name) != name or name in (".", ".."):
        raise CaffeliteError(f"{readme}: caffemodel must be a plain file name, got {name!r}")
    if "://" not in url:
        raise CaffeliteError(f"{readme}: caffemodel_url is not a URL ({url!r}); this model "
                             f"publishes no weights to download")
    known = sha1 not in UNKNOWN_SHA1
    if known and (len(sha1) != 40 or any(c not in "0123456789abcdef" for c in sha1)):
        raise CaffeliteError(f"{readme}: sha1 {front['sha1']!r} is not a 40-digit hex SHA-1")
    final = os.path.join(model_dir, name)
    part = final + ".part"
    if os.path.exists(final):
        if not known:
            logger.warning("%s already exists; it cannot be verified (%s says sha1: %s)",
                           final, readme, front["sha1"])
            return final
        got = sha1_of(final)
        if got == sha1:
            logger.info("Model already exists: %s (SHA-1 %s checks out)", final, sha1)
            return final
        logger.warning("%s exists but its SHA-1 is %s, not %s; downloading it again",
                       final, got, sha1)
    logger.info("Downloading %s to %s", url, final)
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, stream)
            break
        except Interrupted as e:
            if attempt == retries:
                raise DownloadError(f"{e}; the partial download is kept in {part}: run the "
                                    f"command again to resume it") from None
            logger.warning("%s; resuming (attempt %d of %d)", e, attempt + 2, retries + 1)
    if known:
        got = sha1_of(part)
        if got != sha1:
            os.remove(part)
            raise DownloadError(f"{url}: the download does not match {readme}: SHA-1 expected "
                                f"{sha1}, got {got}; the corrupt download was deleted, "
                                f"nothing was written to {final}")
    else:
        logger.warning("%s gives sha1: %s, so the download cannot be verified", readme,
                       front["sha1"])
    os.replace(part, final)
    logger.info("Model downloaded to %s", final)
    return final


@command("download_model_binary", "download a model's weights named by models/<name>/readme.md")
def download_model_binary_cmd(argv):
    parser = new_parser("caffelite download_model_binary",
                        "Download the trained weights of a model zoo directory and verify "
                        "them against the SHA-1 in its readme.md front matter.")
    parser.add_argument("dirname", help="the model directory, e.g. models/googlenet")
    parser.add_argument("--retries", type=int, default=2,
                        help="how many times to resume a broken download (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait on a stalled connection (default 60)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dirname):
        raise CaffeliteError(f"{args.dirname}: not a directory (give a model directory such "
                             f"as models/googlenet)")
    download_model_binary(args.dirname, retries=args.retries, timeout=args.timeout)
    return 0
