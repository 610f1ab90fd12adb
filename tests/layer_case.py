"""Checks many layer tests share: replaying one Caffe fixture case, and in-place use giving
what out-of-place use gives."""
import json

import numpy as np
import pytest

from caffelite.layer import create_layer, layer_type_list
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, make_blobs


def replay(fixtures_dir, name, kind="layers"):
    """Replay fixture case ``kind/name``; skip it when it needs unregistered layer types."""
    case_dir = fixtures_dir / kind / name
    needed = set(json.loads((case_dir / "case.json").read_text())["layer_types"])
    missing = needed - set(layer_type_list())
    if missing:
        pytest.skip(f"fixture {name} needs unregistered types {sorted(missing)}")
    replay_net_case(case_dir)


def assert_in_place_matches(layer_param, x, dy, dtype=np.float64):
    """The layer run with top == bottom gives, bit for bit, the top data and bottom diff of
    the same layer run out of place."""
    bottom = make_blobs([x], dtype=dtype)
    layer, top = build_layer(layer_param, bottom, dtype=dtype)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    blob = make_blobs([x], dtype=dtype)[0]
    in_place = create_layer(layer_param)
    in_place.SetUp([blob], [blob])
    in_place.Forward([blob], [blob])
    np.testing.assert_array_equal(blob.data, top[0].data)
    blob.diff[...] = dy
    in_place.Backward([blob], [True], [blob])
    np.testing.assert_array_equal(blob.diff, bottom[0].diff)


def convolution_layer_param(layer_type, name, num_output, n_bottom=1, **kw):
    """A Convolution-family LayerParameter: bottoms x0.., tops y0.., convolution_param from
    ``kw`` (lists extend repeated fields), gaussian(0.5) fillers unless given."""
    lp = caffe_pb2.LayerParameter(name=name, type=layer_type)
    for i in range(n_bottom):
        lp.bottom.append(f"x{i}")
        lp.top.append(f"y{i}")
    p = lp.convolution_param
    if num_output is not None:
        p.num_output = num_output
    for k, v in kw.items():
        if isinstance(v, (list, tuple)):
            getattr(p, k).extend(v)
        elif k in ("weight_filler", "bias_filler"):
            getattr(p, k).CopyFrom(v)
        else:
            setattr(p, k, v)
    for k in ("weight_filler", "bias_filler"):
        if k not in kw:
            getattr(p, k).CopyFrom(caffe_pb2.FillerParameter(type="gaussian", std=0.5))
    return lp


def expand(v, n):
    """A geometry value given once or per axis, as n values."""
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return v * n if len(v) == 1 else v
