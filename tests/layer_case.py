"""Checks many layer tests share: replaying one Caffe fixture case, and in-place use giving
what out-of-place use gives."""
import json

import numpy as np
import pytest

from caffelite.layer import create_layer, layer_type_list
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
