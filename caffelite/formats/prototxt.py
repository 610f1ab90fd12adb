"""Protobuf text format in and out, with errors that name file:line:column."""
import os

from google.protobuf import text_format

from ..errors import PrototxtError


def _read_text(path):
    path = os.fspath(path)
    try:
        # Caffe's tokenizer takes any bytes in comments (GBK or Latin-1 notes are common):
        # bytes that are not UTF-8 pass through as surrogates, which a comment drops and a
        # string value refuses with the file, line and column
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except FileNotFoundError:
        raise PrototxtError(f"{path}: no such file") from None


def parse_text(text, message, source="<string>"):
    """Merge protobuf text ``text`` into ``message``; a parse error names source:line:col.
    As Caffe's reader (TextFormat::Parse), a non-repeated field given twice in the text is
    an error, not "the last one wins"."""
    try:
        parsed = type(message)()
        text_format.Parse(text, parsed)
        message.MergeFrom(parsed)
    except text_format.ParseError as e:
        line, col = _position(e)
        detail = str(e)
        # ParseError's text begins with "line:col : "; keep only the explanation.
        if line is not None and detail.startswith(f"{line}:"):
            detail = detail.split(" : ", 1)[-1]
        where = f"{source}:{line}:{col}" if line is not None else source
        raise PrototxtError(f"{where}: {detail}") from None
    return message


def _position(err):
    line = getattr(err, "GetLine", lambda: None)()
    col = getattr(err, "GetColumn", lambda: None)()
    if line is None:
        head = str(err).split(" : ", 1)[0]
        parts = head.split(":")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            line, col = int(parts[0]), int(parts[1])
    return line, col


def read_prototxt(path, message):
    return parse_text(_read_text(path), message, source=os.fspath(path))


def write_prototxt(message, path):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text_format.MessageToString(message))
    os.replace(tmp, path)


def read_binary(path, message):
    """Parse a binary protobuf file; errors name the file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise PrototxtError(f"{path}: no such file") from None
    try:
        message.ParseFromString(data)
    except Exception as e:  # google.protobuf.message.DecodeError and friends
        raise PrototxtError(f"{path}: not a binary {message.DESCRIPTOR.name} ({e})") from None
    return message
