"""pycaffe's ``caffe.io``: BlobProto and Datum conversions (same signatures and results)."""
import numpy as np

from .formats.blobproto import blobproto_shape


def blobproto_to_array(blob, return_diff=False):
    """BlobProto -> float64 array shaped by the legacy 4-D dims if present, else shape.dim."""
    if return_diff:
        values = blob.double_diff if len(blob.double_diff) else blob.diff
    else:
        values = blob.double_data if len(blob.double_data) else blob.data
    return np.array(values, dtype=np.float64).reshape(blobproto_shape(blob))


def array_to_blobproto(arr, diff=None):
    """N-D array (and optional diff of the same shape) -> BlobProto with ``shape.dim``."""
    from .proto import caffe_pb2
    arr = np.asarray(arr)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(int(d) for d in arr.shape)
    blob.data.extend(arr.astype(np.float32).ravel())
    if diff is not None:
        diff = np.asarray(diff)
        if diff.shape != arr.shape:
            raise ValueError(f"diff shape {diff.shape} differs from data shape {arr.shape}")
        blob.diff.extend(diff.astype(np.float32).ravel())
    return blob


def arraylist_to_blobprotovector_str(arraylist):
    from .proto import caffe_pb2
    vec = caffe_pb2.BlobProtoVector()
    for arr in arraylist:
        vec.blobs.add().CopyFrom(array_to_blobproto(arr))
    return vec.SerializeToString()


def blobprotovector_str_to_arraylist(s):
    from .proto import caffe_pb2
    vec = caffe_pb2.BlobProtoVector()
    vec.ParseFromString(s)
    return [blobproto_to_array(b) for b in vec.blobs]


def array_to_datum(arr, label=None):
    """C×H×W array -> Datum: uint8 arrays go to ``data`` bytes, others to ``float_data``."""
    from .proto import caffe_pb2
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"Incorrect array shape: a Datum needs C×H×W, got {arr.shape}")
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(arr.astype(np.float32).ravel())
    if label is not None:
        datum.label = int(label)
    return datum


def datum_to_array(datum):
    """Datum -> C×H×W array: uint8 from ``data``, float64 from ``float_data``."""
    shape = (datum.channels, datum.height, datum.width)
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(shape).copy()
    return np.array(datum.float_data, dtype=np.float64).reshape(shape)


def load_mean_file(path):
    """A ``.binaryproto`` mean file as pycaffe reads it: (1, C, H, W) float64."""
    from .formats.prototxt import read_binary
    from .proto import caffe_pb2
    return blobproto_to_array(read_binary(path, caffe_pb2.BlobProto()))


def save_mean_file(arr, path):
    """Write a mean as compute_image_mean does: a BlobProto with legacy 4-D dims."""
    from .formats.blobproto import array_to_blobproto as to_bp
    with open(path, "wb") as f:
        f.write(to_bp(np.asarray(arr), legacy_dims=True).SerializeToString())
