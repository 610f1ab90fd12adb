"""Caffe's ``debug_info`` log lines: mean absolute values of blobs as the net runs (§3.9)."""
import logging

import numpy as np

from .backend import asnumpy
from .log import g6

log = logging.getLogger("caffelite")


def _mean_abs(a):
    a = asnumpy(a)
    return float(np.abs(a, dtype=np.float64).sum() / a.size) if a.size else 0.0


def forward_info(net, i):
    name = net._layer_names[i]
    for idx in net._top_id_vecs[i]:
        log.info("    [Forward] Layer %s, top blob %s data: %s", name, net._blob_names[idx],
                 g6(_mean_abs(net._blob_list[idx].data)))
    for j, blob in enumerate(net.layers[i].blobs):
        log.info("    [Forward] Layer %s, param blob %s data: %s", name,
                 net.param_display_name(i, j), g6(_mean_abs(blob.data)))


def backward_info(net, i):
    name = net._layer_names[i]
    layer = net.layers[i]
    for j, idx in enumerate(net._bottom_id_vecs[i]):
        if net._bottom_need_backward[i][j]:
            log.info("    [Backward] Layer %s, bottom blob %s diff: %s", name,
                     net._blob_names[idx], g6(_mean_abs(net._blob_list[idx].diff)))
    for j, blob in enumerate(layer.blobs):
        if layer.param_needs_grad(j):
            log.info("    [Backward] Layer %s, param blob %d diff: %s", name, j,
                     g6(_mean_abs(blob.diff)))


def all_params_info(net):
    sums = np.zeros(4)
    for blob in net.learnable_params:
        d, g = asnumpy(blob.data).astype(np.float64), asnumpy(blob.diff).astype(np.float64)
        sums += (np.abs(d).sum(), np.abs(g).sum(), (d * d).sum(), (g * g).sum())
    # Caffe logs this one line at ERROR severity (an "E" line)
    log.error("    [Backward] All net params (data, diff): L1 norm = (%s, %s); L2 norm = (%s, "
              "%s)", g6(sums[0]), g6(sums[1]), g6(np.sqrt(sums[2])), g6(np.sqrt(sums[3])))
