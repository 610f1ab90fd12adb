"""``caffelite compute_image_mean INPUT_DB [OUTPUT_FILE]``: the mean image of an LMDB.

Caffe's compute_image_mean: every Datum (raw uint8, float_data, or an encoded image decoded
with its own channel count) is added into a float32 sum, element by element and in key
order, which is then divided by the number of Datums; both steps use float32 arithmetic as
Caffe's BlobProto does, so the mean file is the one Caffe writes. It is saved as a
BlobProto 1×C×H×W with legacy dims, and the mean of each channel is logged as
``mean_value channel [c]:v``.
"""
import numpy as np

from ..errors import CaffeliteError
from ..log import g6, logger
from .tool_utils import Progress, check_backend
from .flags import new_parser
from .main import command

LOG_EVERY = 10000


def _open(path):
    from ..data.lmdb_source import LMDBSource, lmdb_kind
    kind = lmdb_kind(path)
    if kind == "missing":
        raise CaffeliteError(f"compute_image_mean: input database '{path}' does not exist")
    if kind == "leveldb":
        raise CaffeliteError(f"compute_image_mean: '{path}' is a LevelDB database; caffelite "
                             f"reads LMDB only (re-create it with `caffelite convert_imageset "
                             f"--backend lmdb`)")
    if kind != "lmdb":
        raise CaffeliteError(f"compute_image_mean: '{path}' is not an LMDB database (an LMDB "
                             f"is a directory holding data.mdb)")
    return LMDBSource(path)


def compute_mean(db_path, progress=True):
    """The mean of all Datums in an LMDB as a float32 array (1, C, H, W)."""
    from ..data.lmdb_source import DataError, datum_array, key_text, parse_datum
    source = _open(db_path)
    total = source.size
    bar = Progress(total, "records") if progress else None
    total_sum, shape, first_key, count = None, None, None, 0
    with source.env.begin(buffers=False) as txn:
        cursor = txn.cursor()
        for key, value in cursor:
            try:
                datum = parse_datum(value, key)
                if count == 0 and datum.encoded:
                    logger.info("Decoding Datum")
                arr = datum_array(datum, key, color=None)
            except DataError as e:
                raise CaffeliteError(f"compute_image_mean: {db_path}: {e}") from None
            if total_sum is None:
                shape, first_key = arr.shape, key_text(key)
                total_sum = np.zeros(shape, dtype=np.float32)
                logger.info("Starting Iteration")
            elif arr.shape != shape:
                raise CaffeliteError(
                    f"compute_image_mean: {db_path}: record '{key_text(key)}' is "
                    f"{'x'.join(map(str, arr.shape))} (C×H×W) but the first record "
                    f"'{first_key}' is {'x'.join(map(str, shape))}; all Datums must have the "
                    f"same size")
            # float32 += value, one rounding per element and record, as Caffe's loop does
            total_sum += arr.astype(np.float32, copy=False)
            count += 1
            if count % LOG_EVERY == 0:
                if bar:
                    bar.clear()
                logger.info("Processed %d files.", count)
            if bar:
                bar.update(count)
    if bar:
        bar.clear()
    if count % LOG_EVERY != 0:
        logger.info("Processed %d files.", count)
    return (total_sum / np.float32(count))[None]


def channel_means(mean):
    """Per-channel means of a (1, C, H, W) mean, summed in float32 in order as Caffe does."""
    flat = mean.reshape(mean.shape[1], -1)
    dim = np.float32(flat.shape[1])
    return [np.cumsum(row, dtype=np.float32)[-1] / dim for row in flat]


@command("compute_image_mean", "compute the mean image of an LMDB of Datums")
def compute_image_mean(argv):
    parser = new_parser("caffelite compute_image_mean",
                        "Compute the mean image of a set of images given by an LMDB; write "
                        "it as a binaryproto mean file when OUTPUT_FILE is given.")
    parser.add_argument("input_db", metavar="INPUT_DB")
    parser.add_argument("output_file", metavar="OUTPUT_FILE", nargs="?", default=None)
    parser.add_argument("--backend", default="lmdb", help="lmdb (leveldb is not supported)")
    args = parser.parse_args(argv)
    check_backend("compute_image_mean", args.backend, "reads")
    mean = compute_mean(args.input_db)
    if args.output_file:
        from ..io import save_mean_file
        logger.info("Write to %s", args.output_file)
        try:
            save_mean_file(mean, args.output_file)
        except OSError as e:
            raise CaffeliteError(f"compute_image_mean: cannot write '{args.output_file}' "
                                 f"({e.strerror or e})") from None
    logger.info("Number of channels: %d", mean.shape[1])
    for c, v in enumerate(channel_means(mean)):
        logger.info("mean_value channel [%d]:%s", c, g6(v))
    return 0
