"""Net transforms a user opts into; each returns a new Net and leaves the given one alone.
For inference, ``fuse_relu(fold_batchnorm(net))`` applies both.

``fold_batchnorm(net)``: the inference-time folding of ``Convolution -> BatchNorm
(global statistics) [-> Scale]`` into the convolution alone. With the BatchNorm statistics
mu = b0/b2, var = b1/b2 and the Scale's gamma, beta (1 and 0 without a Scale):

    a = gamma / sqrt(var + eps)         W'[o] = a[o] W[o]        b'[o] = a[o] (b[o] - mu[o]) + beta[o]

so conv' (x) = Scale(BatchNorm(conv(x))) up to float32 rounding (the folded products are
formed in float64 and rounded once). Only chains whose intermediate blobs nobody else reads
are folded; the folded convolution takes the chain's last top name, so every blob a later
layer reads keeps its name; the input blobs' current data is copied. The result is for
inference: BatchNorm and Scale no longer exist as layers, and the folded convolution's
weights are not the trained ones.
"""
import numpy as np

from .backend import asnumpy, to_device
from .proto import caffe_pb2


def _global_stats(lp, phase):
    p = lp.batch_norm_param
    return p.use_global_stats if p.HasField("use_global_stats") else phase == caffe_pb2.TEST


def _per_channel_scale(lp):
    p = lp.scale_param
    return len(lp.bottom) == 1 and p.axis in (1, -3) and p.num_axes == 1


def _find_chains(net):
    """[(conv, bn, scale or None)] layer indices in ``net.layers``. The net's layers have
    Split layers inserted wherever a value is read twice, so a BatchNorm that reads the
    convolution's top by name is its only reader (and likewise the Scale of the BatchNorm's
    top): folding hides no value anybody else reads."""
    params = net._layer_params
    chains = []
    for i, lp in enumerate(params[:-1]):
        bn = params[i + 1]
        if lp.type != "Convolution" or len(lp.top) != 1 or bn.type != "BatchNorm" or \
                list(bn.bottom) != [lp.top[0]] or not _global_stats(bn, net.phase):
            continue
        scale = None
        if i + 2 < len(params):
            sc = params[i + 2]
            if sc.type == "Scale" and list(sc.bottom) == [bn.top[0]] and _per_channel_scale(sc):
                scale = i + 2
        chains.append((i, i + 1, scale))
    return chains


def fold_batchnorm(net):
    """A new Net computing ``net``'s forward with every foldable Convolution -> BatchNorm
    (use_global_stats) [-> Scale] chain as one Convolution (see the module docstring)."""
    from .net import Net
    from .net_rules import filter_net
    chains = _find_chains(net)
    # net.layers are the state-filtered layers with Splits inserted; the filtered
    # NetParameter has the same layers in the same order, without the Splits.
    position = {}
    k = 0
    for i, lp in enumerate(net._layer_params):
        if lp.type != "Split":
            position[i] = k
            k += 1
    filtered = filter_net(net.param)
    drop, fold = set(), {}
    for conv_i, bn_i, sc_i in chains:
        last = sc_i if sc_i is not None else bn_i
        drop.update({position[bn_i], position[last]})
        fold[position[conv_i]] = net._layer_params[last].top[0]
    out = caffe_pb2.NetParameter()
    out.CopyFrom(filtered)
    del out.layer[:]
    for j, lp in enumerate(filtered.layer):
        if j in drop:
            continue
        new = out.layer.add()
        new.CopyFrom(lp)
        del new.blobs[:]
        if j in fold:
            new.top[0] = fold[j]
            new.convolution_param.bias_term = True
            if len(new.param) == 1:          # the bias gets the weight's spec's defaults
                new.param.add()
    folded = Net(out)
    _copy_weights(net, folded, {conv_i: (bn_i, sc_i) for conv_i, bn_i, sc_i in chains})
    for name in net.inputs:                   # the inputs as they are now, too
        if name in folded.blobs and folded.blobs[name].shape == net.blobs[name].shape:
            folded.blobs[name].data[...] = net.blobs[name].data
    return folded


def _copy_weights(src, dst, chains):
    for i, layer in enumerate(src.layers):
        if not layer.blobs or src.layers[i].type == "Split":
            continue
        j = dst.first_layer_index(src._layer_names[i])
        if j is None:
            continue                          # a folded BatchNorm or Scale
        target = dst.layers[j]
        if i not in chains:
            for a, b in zip(target.blobs, layer.blobs):
                a.data[...] = b.data
            continue
        bn_i, sc_i = chains[i]
        bn = src.layers[bn_i]
        f = float(asnumpy(bn.blobs[2].data).reshape(-1)[0])
        f = 0.0 if f == 0 else 1.0 / f
        mean = asnumpy(bn.blobs[0].data).astype(np.float64).reshape(-1) * f
        var = asnumpy(bn.blobs[1].data).astype(np.float64).reshape(-1) * f
        a = 1.0 / np.sqrt(var + bn.eps)
        beta = np.zeros_like(a)
        if sc_i is not None:
            sc = src.layers[sc_i]
            a = a * asnumpy(sc.blobs[0].data).astype(np.float64).reshape(-1)
            if len(sc.blobs) > 1:
                beta = asnumpy(sc.blobs[1].data).astype(np.float64).reshape(-1)
        w = asnumpy(layer.blobs[0].data).astype(np.float64)
        b = (asnumpy(layer.blobs[1].data).astype(np.float64).reshape(-1)
             if len(layer.blobs) > 1 else np.zeros(w.shape[0]))
        w2 = w * a.reshape((-1,) + (1,) * (w.ndim - 1))
        b2 = a * (b - mean) + beta
        for blob, value in ((target.blobs[0], w2), (target.blobs[1], b2)):
            blob.data[...] = to_device(value.astype(blob.dtype).reshape(blob.shape), blob.xp)


def _fusable_producer(layer):
    return layer.type == "Convolution" or (
        layer.type == "Eltwise" and layer.op == caffe_pb2.EltwiseParameter.SUM)


def fuse_relu(net):
    """A new Net computing ``net``'s forward (and backward) with every in-place ReLU applied
    by the Convolution or Eltwise SUM layer just before it, on each piece of output while it
    is still in cache, instead of in a pass of its own over the whole blob. Same operations
    in the same order, so the same bits; the ReLU layers stay in the net (its prototxt,
    blobs and layer list are unchanged) and do nothing in forward. Chains are found as
    ``fold_batchnorm`` finds them: the ReLU must be the very next layer, read the producer's
    only top and write it in place."""
    from .net import Net
    fused = Net(net.param)                   # the param carries the state (phase, stages)
    _copy_weights(net, fused, {})
    for name in net.inputs:
        if name in fused.blobs and fused.blobs[name].shape == net.blobs[name].shape:
            fused.blobs[name].data[...] = net.blobs[name].data
    params = fused._layer_params
    for i in range(len(fused.layers) - 1):
        producer, relu = fused.layers[i], fused.layers[i + 1]
        lp, rp = params[i], params[i + 1]
        if relu.type != "ReLU" or not _fusable_producer(producer) or len(lp.top) != 1 or \
                list(rp.bottom) != [lp.top[0]] or list(rp.top) != [lp.top[0]]:
            continue
        producer.fused_relu = relu.negative_slope
        relu.absorbed = True
    return fused
