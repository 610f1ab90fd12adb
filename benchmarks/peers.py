"""The peers: the same net, weights and inputs run by PyTorch and by OpenCV DNN.

``TorchNet`` replays a caffelite Net's layer graph with torch.nn.functional ops and the net's
own weights copied into torch tensors: the computation a PyTorch user would write for the
prototxt (BatchNorm followed by Scale on the same blob is one ``F.batch_norm`` with the
Scale's weight and bias, as ``nn.BatchNorm2d`` would be). ``opencv_net`` reads the prototxt
and caffemodel that caffelite writes, as a Caffe user would hand them to OpenCV.
"""
import os

import numpy as np

from caffelite.formats.prototxt import write_prototxt


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except Exception:
        return False


def have_opencv():
    try:
        import cv2
        return hasattr(cv2, "dnn")
    except Exception:
        return False


def torch_version():
    import torch
    return torch.__version__


def opencv_can_disable_winograd():
    """OpenCV 4.7 and later compute 3x3 convolutions with Winograd by default and let a
    net turn that off."""
    import cv2
    return hasattr(cv2.dnn.Net, "enableWinograd")


def opencv_version():
    import cv2
    return cv2.__version__


class TorchNet:
    """A caffelite Net's forward (and loss) as torch ops on ``device``."""

    SUPPORTED = {"Input", "Convolution", "Pooling", "ReLU", "LRN", "InnerProduct", "Dropout",
                 "Softmax", "SoftmaxWithLoss", "BatchNorm", "Scale", "Eltwise", "Split",
                 "Concat"}

    def __init__(self, net, device="cpu", train=False):
        import torch
        from caffelite.backend import asnumpy
        self.torch = torch
        self.device = device
        self.train = train
        self.steps = []
        self.params = []             # (tensor, lr_mult, decay_mult) of learnable params
        self.inputs = list(net.inputs)
        names = net._layer_names
        skip = set()
        for i, layer in enumerate(net.layers):
            if i in skip:
                continue
            t = layer.type
            if t not in self.SUPPORTED:
                raise NotImplementedError(f"TorchNet: layer type {t}")
            bottoms = net.bottom_names[names[i]]
            tops = net.top_names[names[i]]
            blobs = [torch.from_numpy(asnumpy(b.data).copy()).to(device) for b in layer.blobs]
            lp = net._layer_params[i]
            if t == "BatchNorm" and i + 1 < len(net.layers) and \
                    net.layers[i + 1].type == "Scale" and \
                    net.bottom_names[names[i + 1]] == tops and len(net.layers[i + 1].blobs):
                scale = [torch.from_numpy(asnumpy(b.data).copy()).to(device)
                         for b in net.layers[i + 1].blobs]
                skip.add(i + 1)
                tops = net.top_names[names[i + 1]]
                self.steps.append((self._batchnorm(layer, blobs, scale), bottoms, tops))
                continue
            if t in ("Convolution", "InnerProduct", "Scale") and train:
                for j, b in enumerate(blobs):
                    b.requires_grad_(True)
                    spec = lp.param[j] if j < len(lp.param) else None
                    self.params.append((b, spec.lr_mult if spec is not None else 1.0,
                                        spec.decay_mult if spec is not None else 1.0))
            self.steps.append((getattr(self, "_" + t.lower())(layer, blobs), bottoms, tops))

    # -- layer builders: each returns fn(list of bottom tensors) -> list of top tensors ----
    def _input(self, layer, blobs):
        return None

    def _convolution(self, layer, blobs):
        import torch.nn.functional as F
        g = layer.geom
        w, b = blobs[0], (blobs[1] if len(blobs) > 1 else None)
        return lambda xs: [F.conv2d(xs[0], w, b, g.stride, g.pad, g.dilation, layer.group)]

    def _pooling(self, layer, blobs):
        import torch.nn.functional as F
        from caffelite.proto import caffe_pb2
        mx = layer.pool == caffe_pb2.PoolingParameter.MAX

        def run(xs):
            k = tuple(layer.k)
            if mx:
                return [F.max_pool2d(xs[0], k, layer.stride, layer.pad, ceil_mode=True)]
            return [F.avg_pool2d(xs[0], k, layer.stride, layer.pad, ceil_mode=True)]
        return run

    def _relu(self, layer, blobs):
        import torch.nn.functional as F
        ns = layer.negative_slope
        if ns:
            return lambda xs: [F.leaky_relu(xs[0], ns)]
        return lambda xs: [F.relu(xs[0], inplace=not self.train)]

    def _lrn(self, layer, blobs):
        import torch.nn.functional as F
        return lambda xs: [F.local_response_norm(xs[0], layer.size, layer.alpha, layer.beta,
                                                 layer.k)]

    def _innerproduct(self, layer, blobs):
        import torch.nn.functional as F
        w, b = blobs[0], (blobs[1] if len(blobs) > 1 else None)
        if layer.transpose:
            w = w.t()
        axis = layer.axis
        return lambda xs: [F.linear(xs[0].flatten(axis), w, b)]

    def _dropout(self, layer, blobs):
        import torch.nn.functional as F
        p = layer.ratio
        return lambda xs: [F.dropout(xs[0], p, training=self.train)]

    def _softmax(self, layer, blobs):
        return lambda xs: [self.torch.softmax(xs[0], 1)]

    def _softmaxwithloss(self, layer, blobs):
        import torch.nn.functional as F
        return lambda xs: [F.cross_entropy(xs[0], xs[1].long())]

    def _batchnorm(self, layer, blobs, scale=None):
        import torch.nn.functional as F
        factor = blobs[2].reshape(()).item()
        factor = 0.0 if factor == 0 else 1.0 / factor
        mean, var = blobs[0] * factor, blobs[1] * factor
        weight = scale[0] if scale else None
        bias = scale[1] if scale and len(scale) > 1 else None
        eps = layer.eps
        return lambda xs: [F.batch_norm(xs[0], mean, var, weight, bias, False, 0.0, eps)]

    def _scale(self, layer, blobs):
        s = blobs[0].reshape(1, -1, 1, 1)
        b = blobs[1].reshape(1, -1, 1, 1) if len(blobs) > 1 else None
        return lambda xs: [xs[0] * s + b if b is not None else xs[0] * s]

    def _eltwise(self, layer, blobs):
        from caffelite.proto import caffe_pb2
        op = layer.op
        coeffs = layer.coeffs
        E = caffe_pb2.EltwiseParameter

        def run(xs):
            if op == E.SUM:
                y = xs[0] if coeffs[0] == 1 else xs[0] * coeffs[0]
                for c, x in zip(coeffs[1:], xs[1:]):
                    y = y + (x if c == 1 else x * c)
                return [y]
            if op == E.PROD:
                y = xs[0]
                for x in xs[1:]:
                    y = y * x
                return [y]
            y = xs[0]
            for x in xs[1:]:
                y = self.torch.maximum(y, x)
            return [y]
        return run

    def _split(self, layer, blobs):
        return lambda xs: [xs[0]] * len(layer.layer_param.top)

    def _concat(self, layer, blobs):
        return lambda xs: [self.torch.cat(xs, layer.axis)]

    # -- running ------------------------------------------------------------------------
    def set_inputs(self, inputs):
        self.feed = {k: self.torch.from_numpy(np.ascontiguousarray(v)).to(self.device)
                     for k, v in inputs.items()}

    def forward(self):
        env = dict(self.feed)
        for fn, bottoms, tops in self.steps:
            if fn is None:
                continue
            outs = fn([env[b] for b in bottoms])
            for name, value in zip(tops, outs):
                env[name] = value
        return env

    def optimizer(self, lr, momentum, weight_decay):
        groups = [{"params": [p], "lr": lr * lr_mult, "weight_decay": weight_decay * decay}
                  for p, lr_mult, decay in self.params]
        return self.torch.optim.SGD(groups, lr=lr, momentum=momentum)


def opencv_net(net, workdir, name):
    """Write ``net``'s NetParameter (Input layers kept) and weights and read them with
    cv2.dnn.readNetFromCaffe."""
    import cv2
    proto = os.path.join(workdir, name + ".prototxt")
    model = os.path.join(workdir, name + ".caffemodel")
    write_prototxt(net.param, proto)
    net.save(model)
    return cv2.dnn.readNetFromCaffe(proto, model)
