"""``caffelite extract_features WEIGHTS NET BLOBS DBS NUM_MINI_BATCHES lmdb [CPU|GPU] [ID]``.

Caffe's extract_features: the net (TEST phase, its data layers feeding it) is loaded with
the trained weights and run forward NUM_MINI_BATCHES times; after each forward every item
n of each named blob becomes one float Datum (``channels``/``height``/``width`` are the
blob's legacy dims, 1 where the blob has fewer axes; ``float_data`` holds the item's values)
stored under the key ``%010d`` (a running count per blob) in the database listed at the
same position. Blobs with more than four axes, which Caffe refuses, fold their trailing
axes into ``width``.

caffelite addition: an output path ending in ``.npy`` receives a NumPy array
(items, *blob shape[1:]) of float32 instead of an LMDB.
"""
import os

import numpy as np

from .. import backend
from ..errors import CaffeliteError
from ..log import logger
from .tool_utils import LMDBWriter, Progress, check_backend
from .main import command

USAGE = ("usage: caffelite extract_features pretrained_net_param feature_extraction_proto_file "
         "extract_feature_blob_name1[,name2,...] save_feature_dataset_name1[,name2,...] "
         "num_mini_batches db_type [CPU/GPU] [DEVICE_ID=0]\n\n"
         "Runs a trained net (TEST phase, fed by its own data layers) for num_mini_batches "
         "forward passes and writes every item of each named blob as a float Datum (keys "
         "%010d) into the LMDB at the same position in the list. A dataset name ending in "
         ".npy is written as a NumPy array (items, ...) instead; db_type must be lmdb.")


class _NpyWriter:
    """Items of one blob appended to a .npy file of a known item count (a memory map),
    written under a temporary name and renamed when complete."""

    def __init__(self, path, blob_name):
        self.path, self.blob_name = path, blob_name
        self.tmp = path + ".partial.npy"
        self.array, self.count, self.progress = None, 0, None
        if os.path.isdir(path):
            raise CaffeliteError(f"extract_features: '{path}' is a directory; a .npy output "
                                 f"must be a file name")

    def put_batch(self, data, total_items):
        if self.array is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self.item_shape = data.shape[1:]
            self.array = np.lib.format.open_memmap(
                self.tmp, mode="w+", dtype=np.float32, shape=(total_items,) + self.item_shape)
        if data.shape[1:] != self.item_shape:
            raise CaffeliteError(f"extract_features: blob '{self.blob_name}' changed shape "
                                 f"from (N, {', '.join(map(str, self.item_shape))}) to "
                                 f"{tuple(data.shape)}; a .npy output needs a fixed item shape")
        self.array[self.count:self.count + len(data)] = data
        self.count += len(data)

    def close(self):
        if self.array is None:
            return
        self.array.flush()
        del self.array
        os.replace(self.tmp, self.path)

    def discard(self):
        self.array = None
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


class _LMDBOutput:
    def __init__(self, path, blob_name):
        self.blob_name, self.progress = blob_name, None
        self.writer = LMDBWriter(path)

    def put_batch(self, data, total_items):
        from ..proto import caffe_pb2
        legacy = tuple(data.shape[1:4]) + (1,) * max(0, 4 - data.ndim)
        if data.ndim > 4:
            legacy = legacy[:2] + (int(np.prod(data.shape[3:])),)
        flat = data.reshape(len(data), -1)
        for item in flat:
            datum = caffe_pb2.Datum()
            datum.channels, datum.height, datum.width = legacy
            datum.float_data.extend(item.tolist())
            if self.writer.put(b"%010d" % self.writer.count, datum.SerializeToString()):
                if self.progress:
                    self.progress.clear()
                logger.error("Extracted features of %d query images for feature blob %s",
                            self.writer.count, self.blob_name)

    @property
    def count(self):
        return self.writer.count

    def close(self):
        self.writer.close()

    def discard(self):
        self.writer.discard()


def _batch_of(blob):
    """The blob's data as (num, ...) float32 NumPy, num = shape[0] (1 for a scalar blob)."""
    data = np.asarray(backend.asnumpy(blob.data), dtype=np.float32)
    return data.reshape((1,) + data.shape) if data.ndim == 0 else data


def extract_features(weights, model, blob_names, outputs, num_mini_batches, gpu=None):
    """The work of ``caffelite extract_features``; returns {blob name: items written}."""
    from ..net import Net, TEST
    if len(blob_names) != len(outputs):
        raise CaffeliteError(f"extract_features: {len(blob_names)} blob names "
                             f"({','.join(blob_names)}) but {len(outputs)} dataset names "
                             f"({','.join(outputs)}); the number of blob names and dataset "
                             f"names must be equal")
    if num_mini_batches <= 0:
        raise CaffeliteError(f"extract_features: num_mini_batches must be positive, got "
                             f"{num_mini_batches}")
    if gpu is not None:
        logger.error("Using GPU")
        logger.error("Using Device_id=%d", gpu)
        backend.set_device(gpu)
        backend.set_mode_gpu()
    else:
        logger.error("Using CPU")
        backend.set_mode_cpu()
    net = Net(model, TEST)
    net.copy_from(weights)
    for name in blob_names:
        if name not in net.blobs:
            raise CaffeliteError(f"extract_features: unknown feature blob name '{name}' in the "
                                 f"network {model} (its blobs: {', '.join(net.blobs)})")
    writers = []
    try:
        for name, path in zip(blob_names, outputs):
            logger.info("Opening dataset %s", path)
            writers.append(_NpyWriter(path, name) if path.endswith(".npy")
                           else _LMDBOutput(path, name))
        logger.error("Extracting Features")
        progress = Progress(num_mini_batches, "mini-batches")
        for writer in writers:
            writer.progress = progress
        for batch in range(num_mini_batches):
            net.forward_prefilled()
            for name, writer in zip(blob_names, writers):
                data = _batch_of(net.blobs[name])
                writer.put_batch(data, len(data) * num_mini_batches)
            progress.update(batch + 1)
        progress.clear()
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            writer.discard()
        raise
    for name, writer in zip(blob_names, writers):
        logger.error("Extracted features of %d query images for feature blob %s",
                    writer.count, name)
    logger.error("Successfully extracted the features!")
    return {name: writer.count for name, writer in zip(blob_names, writers)}


@command("extract_features", "write chosen blobs of a trained net to LMDBs (or .npy files)")
def extract_features_command(argv):
    if any(a in ("-h", "--help", "-help") for a in argv):
        print(USAGE)
        return 0
    if len(argv) < 6 or len(argv) > 8:
        raise CaffeliteError(f"extract_features: expected 6 to 8 arguments, got {len(argv)}\n"
                             f"{USAGE}")
    weights, model, blobs, dbs, num, db_type = argv[:6]
    check_backend("extract_features", db_type)
    try:
        num_mini_batches = int(num)
    except ValueError:
        raise CaffeliteError(f"extract_features: num_mini_batches must be an integer, got "
                             f"'{num}'") from None
    gpu = None
    if len(argv) > 6:
        mode = argv[6].upper()
        if mode not in ("CPU", "GPU"):
            raise CaffeliteError(f"extract_features: expected CPU or GPU after db_type, got "
                                 f"'{argv[6]}'")
        if mode == "GPU":
            try:
                gpu = int(argv[7]) if len(argv) > 7 else 0
            except ValueError:
                gpu = -1
            if gpu < 0:
                raise CaffeliteError(f"extract_features: DEVICE_ID must be a non-negative "
                                     f"integer, got '{argv[7]}'")
    extract_features(weights, model, blobs.split(","), dbs.split(","), num_mini_batches, gpu)
    return 0
