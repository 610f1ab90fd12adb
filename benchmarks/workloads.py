"""Benchmark workloads, defined once and shared by every side (caffelite, PyTorch, OpenCV).

Each workload is a NetParameter built from a model shipped in ``models/`` plus fixed inputs
drawn from a seeded generator. caffelite builds the net from the NetParameter and fills its
weights; the peers get the very same weights (``caffelite_weights``) and inputs, and their
outputs are compared with caffelite's before anything is timed.

    lenet_train      LeNet (models/lenet/train_val.prototxt, Data layers replaced by Input
                     layers), TRAIN phase, batch 64: one SGD solver step (forward, backward,
                     momentum 0.9, weight decay 5e-4 as models/lenet/solver.prototxt).
    caffenet_fwd     CaffeNet (models/caffenet/deploy.prototxt), TEST phase, batch 32: forward.
    caffenet_fwdbwd  the same net in TRAIN phase with the Softmax replaced by SoftmaxWithLoss
                     and a label Input, batch 32: forward + backward (Dropout active).
    resnet50_half_bN ResNet-50 (models/resnet50/deploy.prototxt) with every Convolution's
                     num_output halved ("half width"; fc1000 keeps 1000 classes), TEST phase,
                     BatchNorm(use_global_stats)+Scale, batch N (1 and 16): forward.
    resnet50_bN      the full-width ResNet-50, batch N: forward.
"""
import os
import re

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(REPO, "models")

# The LeNet solver (models/lenet/solver.prototxt) without its schedule: one step is timed.
LENET_SOLVER = dict(base_lr=0.01, momentum=0.9, weight_decay=0.0005)
LENET_SOLVER_TORCH = dict(lr=0.01, momentum=0.9, weight_decay=0.0005)


def _read(path):
    with open(os.path.join(MODELS, path), encoding="utf-8") as f:
        return f.read()


def _parse(text, source):
    from caffelite.formats.prototxt import parse_text
    from caffelite.proto import caffe_pb2
    return parse_text(text, caffe_pb2.NetParameter(), source=source)


def _input_layer(name, tops_shapes):
    tops = "".join(f'  top: "{t}"\n' for t, _ in tops_shapes)
    shapes = "".join("    shape { " + " ".join(f"dim: {d}" for d in s) + " }\n"
                     for _, s in tops_shapes)
    return f'layer {{\n  name: "{name}"\n  type: "Input"\n{tops}  input_param {{\n{shapes}  }}\n}}\n'


def _set_batch(text, batch):
    """Replace the first Input layer's batch dimension (the first ``dim:``)."""
    return re.sub(r"dim:\s*\d+", f"dim: {batch}", text, count=1)


def lenet_train_param(batch=64):
    """LeNet train_val with the two Data layers replaced by one Input layer (data, label)."""
    from caffelite.proto import caffe_pb2
    src = _parse(_read("lenet/train_val.prototxt"), "models/lenet/train_val.prototxt")
    out = caffe_pb2.NetParameter()
    out.name = src.name
    out.state.phase = caffe_pb2.TRAIN
    out.MergeFrom(_parse(_input_layer("mnist", [("data", (batch, 1, 28, 28)),
                                                 ("label", (batch,))]), "<input>"))
    for lp in src.layer:
        if lp.type == "Data":
            continue
        if any(r.HasField("phase") and r.phase == caffe_pb2.TEST for r in lp.include):
            continue
        out.layer.add().CopyFrom(lp)
    return out


def caffenet_param(batch=32, train=False):
    """CaffeNet deploy at ``batch``; ``train``: TRAIN phase, SoftmaxWithLoss on a label Input."""
    from caffelite.proto import caffe_pb2
    text = _set_batch(_read("caffenet/deploy.prototxt"), batch)
    p = _parse(text, "models/caffenet/deploy.prototxt")
    p.state.phase = caffe_pb2.TRAIN if train else caffe_pb2.TEST
    if train:
        label = _parse(_input_layer("label", [("label", (batch,))]), "<input>").layer[0]
        p.layer.insert(1, label)
        last = p.layer[-1]
        assert last.type == "Softmax"
        last.type = "SoftmaxWithLoss"
        last.name = "loss"
        del last.top[:]
        last.top.append("loss")
        last.bottom.append("label")
    return p


def resnet50_param(batch=1, half=False):
    """ResNet-50 deploy at ``batch``; ``half`` halves every Convolution's num_output."""
    from caffelite.proto import caffe_pb2
    text = _set_batch(_read("resnet50/deploy.prototxt"), batch)
    p = _parse(text, "models/resnet50/deploy.prototxt")
    p.state.phase = caffe_pb2.TEST
    if half:
        for lp in p.layer:
            if lp.type == "Convolution":
                lp.convolution_param.num_output //= 2
    return p


class Workload:
    """name, how to build it, what is timed (``kind``: 'train_step', 'fwdbwd', 'forward')."""

    def __init__(self, name, title, kind, build, inputs, output, peers):
        self.name, self.title, self.kind = name, title, kind
        self.build, self.make_inputs, self.output, self.peers = build, inputs, output, peers

    def net_param(self):
        return self.build()


def _lenet_inputs(batch):
    rng = np.random.default_rng(1)
    return {"data": rng.random((batch, 1, 28, 28), dtype=np.float32),
            "label": rng.integers(0, 10, batch).astype(np.float32)}


def _image_inputs(batch, size, label=False):
    rng = np.random.default_rng(2)
    out = {"data": rng.standard_normal((batch, 3, size, size), dtype=np.float32)}
    if label:
        out["label"] = rng.integers(0, 1000, batch).astype(np.float32)
    return out


def workloads(quick=False):
    """The workload list, in table order. ``quick`` keeps the set but is used by run.py to
    take fewer repetitions; the full run adds full-width ResNet-50."""
    w = [
        Workload("lenet_train", "LeNet training step, batch 64", "train_step",
                 lambda: lenet_train_param(64), lambda: _lenet_inputs(64), "loss",
                 ("torch",)),
        Workload("caffenet_fwdbwd", "CaffeNet forward+backward, batch 32", "fwdbwd",
                 lambda: caffenet_param(32, train=True),
                 lambda: _image_inputs(32, 227, label=True), "loss", ("torch",)),
        Workload("caffenet_fwd", "CaffeNet forward, batch 32", "forward",
                 lambda: caffenet_param(32), lambda: _image_inputs(32, 227), "prob",
                 ("torch", "opencv")),
        Workload("resnet50_half_b1", "ResNet-50 half width inference, batch 1", "forward",
                 lambda: resnet50_param(1, half=True), lambda: _image_inputs(1, 224),
                 "fc1000", ("torch", "opencv")),
        Workload("resnet50_half_b16", "ResNet-50 half width inference, batch 16", "forward",
                 lambda: resnet50_param(16, half=True), lambda: _image_inputs(16, 224),
                 "fc1000", ("torch", "opencv")),
    ]
    if not quick:
        w += [
            Workload("resnet50_b1", "ResNet-50 inference, batch 1", "forward",
                     lambda: resnet50_param(1), lambda: _image_inputs(1, 224), "fc1000",
                     ("torch", "opencv")),
            Workload("resnet50_b16", "ResNet-50 inference, batch 16", "forward",
                     lambda: resnet50_param(16), lambda: _image_inputs(16, 224), "fc1000",
                     ("torch", "opencv")),
        ]
    return w


def build_net(workload, seed=0):
    """The caffelite Net of ``workload`` with seeded weights, realistic BatchNorm statistics
    (running mean ~ N(0, 0.1), variance ~ U(0.5, 1.5), scale factor 1; Scale gammas ~
    U(0.3, 0.7) so a deep residual stack stays in range) and its inputs loaded."""
    import caffelite as caffe
    caffe.set_random_seed(seed)
    net = caffe.Net(workload.net_param())
    rng = np.random.default_rng(seed + 100)
    for layer in net.layers:
        if layer.type == "BatchNorm":
            c = layer.blobs[0].count
            layer.blobs[0].data[...] = _dev(rng.normal(0, 0.1, c), layer.blobs[0])
            layer.blobs[1].data[...] = _dev(rng.uniform(0.5, 1.5, c), layer.blobs[1])
            layer.blobs[2].data[...] = 1
        elif layer.type == "Scale":
            c = layer.blobs[0].count
            layer.blobs[0].data[...] = _dev(rng.uniform(0.3, 0.7, c), layer.blobs[0])
            if len(layer.blobs) > 1:
                layer.blobs[1].data[...] = _dev(rng.normal(0, 0.05, c), layer.blobs[1])
    load_inputs(net, workload.make_inputs())
    return net


def _dev(a, blob):
    from caffelite.backend import to_device
    return to_device(a.astype(blob.dtype), blob.xp)


def load_inputs(net, inputs):
    from caffelite.backend import to_device
    for k, v in inputs.items():
        b = net.blobs[k]
        b.data[...] = to_device(v.reshape(b.shape), b.xp)


def caffelite_weights(net):
    """{layer name: [numpy arrays]} of every layer with blobs, in the net's order."""
    from caffelite.backend import asnumpy
    return {name: [asnumpy(b.data) for b in blobs] for name, blobs in net.params.items()}


def lenet_solver(workload, seed=0, net_param=None):
    """An SGDSolver over ``workload``'s net with LENET_SOLVER's settings, inputs loaded."""
    import caffelite as caffe
    from caffelite.proto import caffe_pb2
    caffe.set_random_seed(seed)
    sp = caffe_pb2.SolverParameter()
    sp.net_param.CopyFrom(net_param if net_param is not None else workload.net_param())
    sp.base_lr = LENET_SOLVER["base_lr"]
    sp.momentum = LENET_SOLVER["momentum"]
    sp.weight_decay = LENET_SOLVER["weight_decay"]
    sp.lr_policy = "fixed"
    sp.max_iter = 1 << 30
    sp.display = 0
    sp.snapshot_after_train = False
    solver = caffe.SGDSolver(sp)
    load_inputs(solver.net, workload.make_inputs())
    return solver


def blob_bytes(net, history=()):
    """(activation blobs data+diff, params data+diff, solver history) in bytes; shared
    buffers (in-place tops, Split-shared diffs, shared params) counted once."""
    seen, act = set(), 0
    for b in net._blob_list:
        for buf in (b._data_buf, b._diff_buf):
            if id(buf) not in seen:
                seen.add(id(buf))
                act += buf.nbytes
    par = 0
    for b in net.learnable_params:
        for buf in (b._data_buf, b._diff_buf):
            if id(buf) not in seen:
                seen.add(id(buf))
                par += buf.nbytes
    for layer in net.layers:          # non-learnable blobs (BatchNorm statistics)
        for b in layer.blobs:
            for buf in (b._data_buf, b._diff_buf):
                if id(buf) not in seen:
                    seen.add(id(buf))
                    par += buf.nbytes
    hist = sum(h.nbytes for h in history)
    return act, par, hist


def write_prototxts(folder):
    """Write every workload's net as ``folder/<name>.prototxt`` (for ``caffelite time``)."""
    from caffelite.formats.prototxt import write_prototxt
    os.makedirs(folder, exist_ok=True)
    paths = []
    for w in workloads():
        path = os.path.join(folder, w.name + ".prototxt")
        write_prototxt(w.net_param(), path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    import argparse
    import sys
    sys.path.insert(0, REPO)
    ap = argparse.ArgumentParser(description="write the benchmark workloads as prototxt "
                                             "files, e.g. for `python -m caffelite time`")
    ap.add_argument("folder")
    for p in write_prototxts(ap.parse_args().folder):
        print(p)
