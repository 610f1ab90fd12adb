"""A tiny classifier and deterministic batches for solver tests."""
import numpy as np

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
