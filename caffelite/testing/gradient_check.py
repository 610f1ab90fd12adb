"""Float64 central-difference gradient checks for one layer, as Caffe's GradientChecker.

The layer's loss is taken as ``sum(top_data * top_weights)`` with fixed random top weights,
so every output element contributes with a distinct weight.
"""
import numpy as np

from .. import backend
from ..blob import Blob
from ..layer import create_layer


def make_blobs(arrays, dtype=np.float64):
    blobs = []
    for arr in arrays:
        arr = np.asarray(arr, dtype=dtype)
        b = Blob(arr.shape, dtype=dtype, xp=np)
        b.data[...] = arr
        blobs.append(b)
    return blobs


def build_layer(layer_param, bottom, num_top=None, dtype=np.float64):
    """Create, set up and return (layer, tops) for ``layer_param`` over the given bottoms."""
    layer = create_layer(layer_param)
    for b in layer.blobs:  # blobs preloaded from the LayerParameter
        b.to(np)
    n = num_top if num_top is not None else max(len(layer_param.top), 1)
    top = [Blob((), dtype=dtype, xp=np) for _ in range(n)]
    layer.SetUp(bottom, top)
    for i, b in enumerate(layer.blobs):
        if b.dtype != dtype:
            nb = Blob(b.shape, dtype=dtype, xp=np)
            nb.data[...] = b.data
            layer.blobs[i] = nb
    return layer, top


def _forward(layer, bottom, top, seed):
    # Reseed before every forward, as Caffe's GradientChecker does, so random layers
    # (Dropout in TRAIN) draw the same mask for every perturbation.
    backend.set_random_seed(seed)
    layer.Forward(bottom, top)


def _objective(layer, bottom, top, weights, seed):
    _forward(layer, bottom, top, seed)
    return sum(float((t.data * w).sum()) for t, w in zip(top, weights))


def check_gradients(layer, bottom, top, check_bottom=None, check_top=None, eps=1e-4,
                    rtol=1e-4, atol=1e-6, seed=1701, skip_params=False):
    """Compare the layer's analytic gradients with central differences.

    check_bottom: indices of bottoms to check (default all); check_top: indices of tops
    contributing to the objective (default all). Raises AssertionError naming the blob and
    element on the first mismatch.
    """
    rng = np.random.default_rng(seed)
    _forward(layer, bottom, top, seed)
    check_top = range(len(top)) if check_top is None else check_top
    weights = [rng.standard_normal(t.shape) if i in check_top else np.zeros(t.shape)
               for i, t in enumerate(top)]
    check_bottom = range(len(bottom)) if check_bottom is None else check_bottom
    targets = [("bottom", i, bottom[i]) for i in check_bottom]
    if not skip_params:
        targets += [("param", i, b) for i, b in enumerate(layer.blobs)]

    def analytic():
        _forward(layer, bottom, top, seed)
        # zero first: some tops share their diff with a bottom (Flatten, Reshape)
        for b in layer.blobs:
            b.diff[...] = 0
        for b in bottom:
            b.diff[...] = 0
        for t, w in zip(top, weights):
            t.diff[...] = w
        layer.param_propagate_down = [True] * len(layer.blobs)
        layer.Backward(top, [i in check_bottom for i in range(len(bottom))], bottom)
        return [t[2].diff.copy() for t in targets]

    grads = analytic()
    for (kind, index, blob), grad in zip(targets, grads):
        flat = blob.data.reshape(-1)
        gflat = grad.reshape(-1)
        for k in range(flat.size):
            saved = flat[k]
            flat[k] = saved + eps
            plus = _objective(layer, bottom, top, weights, seed)
            flat[k] = saved - eps
            minus = _objective(layer, bottom, top, weights, seed)
            flat[k] = saved
            numeric = (plus - minus) / (2 * eps)
            scale = max(abs(numeric), abs(gflat[k]), 1.0)
            if abs(numeric - gflat[k]) > atol + rtol * scale:
                raise AssertionError(
                    f"{layer.type} '{layer.name}': {kind} {index} element {k}: analytic "
                    f"{gflat[k]:.8g} vs numeric {numeric:.8g}")
    return grads
