"""``caffelite convert_imageset ROOTFOLDER/ LISTFILE DB_NAME``: images -> an LMDB of Datums.

Caffe's convert_imageset, with its flags. Each LISTFILE line is ``relpath label`` (split at
the last space); the image ``ROOTFOLDER + relpath`` (plain concatenation, as Caffe does, so
ROOTFOLDER normally ends in '/') is decoded the way OpenCV does it (B, G, R planes, or one
plane with ``--gray``), resized with INTER_LINEAR when both ``--resize_height`` and
``--resize_width`` are set, and stored under the key ``%08d_relpath`` (the number is the
line's position in the possibly shuffled list, so skipped images leave gaps as in Caffe).

Raw Datums hold C×H×W uint8 pixels. ``--encoded`` stores the file's own bytes instead
(``encoded: true``), re-encoding only for a resize or an ``--encode_type`` other than the
file's extension, as Caffe does: a gray file, or a colour file with ``--gray``, keeps its
bytes (the data layer's force_color / force_gray decide the channels a net gets).
``--encode_type`` implies ``--encoded``.
"""
import os

import numpy as np

from ..errors import CaffeliteError
from ..log import logger
from .flags import new_parser
from .main import command
from .tool_utils import LMDBWriter, Progress, bool_flags, check_backend

COMMIT_EVERY = 1000  # records per LMDB transaction, as Caffe
SHUFFLE_SEED = 1701  # fixed: the same list always shuffles to the same order

# encode_type (a file extension) -> Pillow's format name
_PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "jpe": "JPEG", "bmp": "BMP",
                "tif": "TIFF", "tiff": "TIFF", "webp": "WEBP", "ppm": "PPM", "pgm": "PPM",
                "pbm": "PPM", "pnm": "PPM"}


# -- the list file and the images ---------------------------------------------------------------

def read_list(path):
    """[(relpath, label)] from a list file; lines split at their last space."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise CaffeliteError(f"{path}: cannot read the list file ({e.strerror or e})") from None
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.rstrip()
        if not line.strip():
            continue
        cut = max(line.rfind(" "), line.rfind("\t"))
        if cut <= 0:
            raise CaffeliteError(f"{path}:{lineno}: expected 'relpath label', got '{line}'")
        relpath, label = line[:cut].rstrip(" \t"), line[cut + 1:]
        try:
            value = int(label)
        except ValueError:
            value = None
        if value is None or not -2**31 <= value < 2**31:
            raise CaffeliteError(f"{path}:{lineno}: the label '{label}' is not a 32-bit "
                                 f"integer (line '{line}')")
        entries.append((relpath, value))
    return entries


def _extension(name):
    base = os.path.basename(name)
    return base.rsplit(".", 1)[1].lower() if "." in base else ""


def _same_format(ext, encoding):
    return ext == encoding or (encoding in ("jpg", "jpeg", "jpe") and ext in ("jpg", "jpeg", "jpe"))


def encode_image(img, encoding):
    """HxWxC uint8 (BGR or one plane) -> file bytes in ``encoding`` (as cv::imencode)."""
    import io
    from PIL import Image
    fmt = _PIL_FORMATS[encoding]
    pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1
                          else np.ascontiguousarray(img[:, :, ::-1]))
    buf = io.BytesIO()
    options = {"JPEG": {"quality": 95}, "PNG": {"compress_level": 1}}.get(fmt, {})
    pil.save(buf, format=fmt, **options)
    return buf.getvalue()


def _decode(buf, color, path):
    from ..data.image import ImageError, decode_image
    try:
        return decode_image(buf, color, what=path)
    except ImageError as e:  # the caller names the file
        raise ImageError(str(e).replace(f"{path}: ", "", 1)) from None


def image_datum(path, label, is_color, height, width, encoded=False, encoding=""):
    """One image file -> a Datum and the C×H×W shape of the image it holds.

    Raw Datums hold the decoded pixels. Encoded ones (``encoded``) hold the file's own
    bytes unless a resize or another ``encoding`` is asked for; then the image is
    re-encoded as ``encoding``, or as the file's own format when ``encoding`` is empty.
    Raises ImageError when the file cannot be read or decoded."""
    from ..data.image import ImageError, resize_linear
    from ..proto import caffe_pb2
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise ImageError(f"{e.strerror or e}") from None
    # Caffe's ReadImageToDatum keeps the file's bytes whenever no resize is asked and the
    # file's extension is the encoding: the decoded image, read as --gray says, always has
    # the channel count its check wants, so a gray PNG stays gray (force_color in the data
    # layer's transform_param decides what a net gets)
    keep = encoded and not (height > 0 and width > 0)
    img = _decode(buf, is_color, path)
    if height > 0 and width > 0:
        img = resize_linear(img, height, width)
    shape = (img.shape[2], img.shape[0], img.shape[1])
    datum = caffe_pb2.Datum()
    if encoded:
        ext = _extension(path)
        if encoding and not _same_format(ext, encoding):
            keep = False
        if not keep:
            if not encoding:
                encoding = ext if ext in _PIL_FORMATS else "png"
                if ext not in _PIL_FORMATS:
                    logger.warning("Failed to guess the encoding of '%s'; re-encoding it as "
                                   "png", path)
            buf = encode_image(img, encoding)
        datum.data = buf
        datum.label = label
        datum.encoded = True
    else:
        datum.channels, datum.height, datum.width = shape
        datum.data = np.ascontiguousarray(img.transpose(2, 0, 1)).tobytes()
        datum.label = label
        datum.encoded = False  # set explicitly, as Caffe's CVMatToDatum does
    return datum, shape


def convert_imageset_to_lmdb(root, list_file, db_path, gray=False, shuffle=False,
                             resize_height=0, resize_width=0, check_size=False,
                             encoded=False, encode_type=""):
    """The work of ``caffelite convert_imageset``; returns the number of records written."""
    from ..data.image import ImageError
    entries = read_list(list_file)
    if shuffle:
        logger.info("Shuffling data")
        order = np.random.RandomState(SHUFFLE_SEED).permutation(len(entries))
        entries = [entries[i] for i in order]
    logger.info("A total of %d images.", len(entries))
    encode_type = encode_type.lower().lstrip(".")
    if encode_type and not encoded:
        logger.info("encode_type specified, assuming encoded=true.")
        encoded = True
    if encode_type and encode_type not in _PIL_FORMATS:
        raise CaffeliteError(f"convert_imageset: unknown --encode_type '{encode_type}' "
                             f"(known: {', '.join(sorted(_PIL_FORMATS))})")
    resize_height, resize_width = max(0, resize_height), max(0, resize_width)
    writer = LMDBWriter(db_path, commit_every=COMMIT_EVERY)
    progress = Progress(len(entries), "files")
    first_shape, first_name, skipped = None, None, 0
    try:
        for line_id, (relpath, label) in enumerate(entries):
            path = root + relpath
            try:
                datum, shape = image_datum(path, label, not gray, resize_height,
                                           resize_width, encoded, encode_type)
            except ImageError as e:
                progress.clear()
                hint = ""
                if root and not root.endswith(("/", os.sep)) and not os.path.exists(path):
                    hint = (f" (ROOTFOLDER is prepended as it is: did you mean "
                            f"'{root}/'?)")
                logger.warning("Could not open or find file %s (%s)%s", path, e, hint)
                skipped += 1
                continue
            if check_size:
                if first_shape is None:
                    first_shape, first_name = shape, path
                elif shape != first_shape:
                    raise CaffeliteError(
                        f"convert_imageset --check_size: image '{path}' (record "
                        f"{line_id:08d}) is {'x'.join(map(str, shape))} (C×H×W) but the first "
                        f"image '{first_name}' is {'x'.join(map(str, first_shape))}")
            committed = writer.put(b"%08d_" % line_id + relpath.encode("utf-8"),
                                   datum.SerializeToString())
            if committed:
                progress.log("Processed %d files.", writer.count)
            progress.update(line_id + 1)
        if writer.count == 0:
            raise CaffeliteError(f"convert_imageset: none of the {len(entries)} images listed "
                                 f"in {list_file} could be read; no database written")
        final_commit = writer.count % writer.commit_every != 0
        writer.close()
    except BaseException:
        writer.discard()
        progress.clear()
        raise
    progress.clear()
    if final_commit:
        logger.info("Processed %d files.", writer.count)
    if skipped:
        logger.warning("Skipped %d of %d images that could not be read.", skipped, len(entries))
    return writer.count


@command("convert_imageset", "convert a list of images and labels to an LMDB of Datums")
def convert_imageset(argv):
    parser = new_parser(
        "caffelite convert_imageset",
        "Convert a set of images to an LMDB of Datums. LISTFILE lines are 'relpath label'; "
        "ROOTFOLDER is prepended to each path as it is (end it with '/').")
    parser.add_argument("root_folder", metavar="ROOTFOLDER/")
    parser.add_argument("list_file", metavar="LISTFILE")
    parser.add_argument("db_name", metavar="DB_NAME")
    parser.add_argument("--gray", action="store_true",
                        help="convert the images to one gray plane")
    parser.add_argument("--shuffle", action="store_true",
                        help="shuffle the list (with a fixed seed: repeatable)")
    parser.add_argument("--backend", default="lmdb", help="lmdb (leveldb is not supported)")
    parser.add_argument("--resize_width", type=int, default=0)
    parser.add_argument("--resize_height", type=int, default=0)
    parser.add_argument("--check_size", action="store_true",
                        help="check that all images have the same size")
    parser.add_argument("--encoded", action="store_true",
                        help="store the encoded image bytes in the Datum")
    parser.add_argument("--encode_type", default="",
                        help="re-encode to this format (png, jpg, ...); implies --encoded")
    names = ("gray", "shuffle", "check_size", "encoded")
    args = parser.parse_args(bool_flags(argv, names))
    check_backend("convert_imageset", args.backend)
    convert_imageset_to_lmdb(args.root_folder, args.list_file, args.db_name, gray=args.gray,
                             shuffle=args.shuffle, resize_height=args.resize_height,
                             resize_width=args.resize_width, check_size=args.check_size,
                             encoded=args.encoded, encode_type=args.encode_type)
    return 0
