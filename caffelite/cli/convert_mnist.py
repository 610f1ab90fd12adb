"""``caffelite convert_mnist_data IMAGES LABELS DB``: MNIST idx files -> an LMDB of Datums,
as Caffe's convert_mnist_data (keys ``%08d``, 1×28×28 uint8 images). Gzipped idx files are
read directly."""
import gzip
import struct

import numpy as np

from ..errors import CaffeliteError
from ..log import logger
from .flags import new_parser
from .main import command
from .tool_utils import LMDBWriter, Progress


def read_idx(path):
    """An idx file (optionally .gz) as a NumPy array; the magic number gives type and rank."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CaffeliteError(f"{path}: no such file") from None
    except OSError as e:
        raise CaffeliteError(f"{path}: cannot read ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise CaffeliteError(f"{path}: not an idx file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise CaffeliteError(f"{path}: unknown idx element type 0x{data[2]:02x}")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    count = int(np.prod(dims))
    arr = np.frombuffer(data, dtype=dtypes[data[2]], count=count, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def write_mnist_lmdb(images_path, labels_path, db_path):
    from ..proto import caffe_pb2
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise CaffeliteError(f"{images_path} / {labels_path}: expected N×rows×cols images and "
                             f"N labels, got {images.shape} and {labels.shape}")
    n, rows, cols = images.shape
    writer = LMDBWriter(db_path)
    logger.info("A total of %d items.", n)
    logger.info("Rows: %d Cols: %d", rows, cols)
    progress = Progress(n, "items")
    datum = caffe_pb2.Datum(channels=1, height=rows, width=cols)
    try:
        for i in range(n):
            datum.data = images[i].tobytes()
            datum.label = int(labels[i])
            if writer.put(b"%08d" % i, datum.SerializeToString()):
                progress.update(i + 1)
        writer.close()
    except BaseException:
        writer.discard()
        raise
    progress.clear()
    logger.info("Processed %d files.", n)
    return n


@command("convert_mnist_data", "convert MNIST idx files (or .gz) to an LMDB of Datums")
def convert_mnist_data(argv):
    parser = new_parser("caffelite convert_mnist_data",
                        "convert MNIST images and labels to an LMDB of Datums")
    parser.add_argument("input_image_file")
    parser.add_argument("input_label_file")
    parser.add_argument("output_db_path")
    parser.add_argument("--backend", default="lmdb", choices=["lmdb", "leveldb"])
    args = parser.parse_args(argv)
    if args.backend != "lmdb":
        raise CaffeliteError("convert_mnist_data: caffelite writes LMDB only; use --backend lmdb")
    write_mnist_lmdb(args.input_image_file, args.input_label_file, args.output_db_path)
    return 0
