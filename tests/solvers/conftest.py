import textwrap

import numpy as np
import pytest

NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 8 dim: 5 } } }
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 8 } } }
layer { name: "fc1" type: "InnerProduct" bottom: "data" top: "h"
  param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  inner_product_param { num_output: 6 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "h" top: "h" }
layer { name: "fc2" type: "InnerProduct" bottom: "h" top: "score"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
"""


def batch(i):
    """A deterministic batch for iteration i (the same in every process)."""
    rng = np.random.default_rng(1000 + i)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32) + (x[:, 1] > 0.5)
    return x, y


@pytest.fixture
def make_solver(tmp_path):
    import caffelite as caffe

    def make(extra="", net=NET, feed=True):
        (tmp_path / "net.prototxt").write_text(net)
        text = f'net: "{tmp_path / "net.prototxt"}"\nrandom_seed: 5\n' \
               f'snapshot_prefix: "{tmp_path / "snap"}"\n' + textwrap.dedent(extra)
        (tmp_path / "solver.prototxt").write_text(text)
        solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
        if feed:
            def on_start():
                x, y = batch(solver.iter)
                solver.net.blobs["data"].data[...] = x
                solver.net.blobs["label"].data[...] = y
            solver.add_callback(on_start, lambda: None)
        return solver
    return make
