"""Net: a NetParameter built into wired layers, run forward and backward (pycaffe's API)."""
import os
from collections import OrderedDict


from .blob import Blob
from .errors import CaffeliteError, NetError, UnknownLayerError, layer_error
from .layer import create_layer
from .log import logger
from .net_rules import filter_net, insert_splits
from . import net_api, net_build, net_debug

TRAIN, TEST = 0, 1


_NET_ARGS = ("network_file", "phase", "level", "stages", "weights")


def _parse_args(args, kwargs):
    """Sort out pycaffe's constructor forms into (source, phase, level, stages, weights):
    ``Net(network_file, phase, level=0, stages=None, weights=None)``, positionally or by
    keyword, and the deprecated ``Net(network_file, pretrained_file, phase)``."""
    if len(args) >= 2 and isinstance(args[1], (str, os.PathLike)):
        if len(args) != 3 or kwargs:
            raise TypeError("Net(network_file, pretrained_file, phase) takes exactly these "
                            "three arguments; use Net(network_file, phase, weights=...)")
        source, weights, phase = args
        logger.warning("DEPRECATION WARNING - deprecated use of Python interface")
        logger.warning('Use this instead (with the named "weights" parameter):')
        logger.warning(f"Net('{os.fspath(source)}', {phase}, weights='{os.fspath(weights)}')")
        return source, phase, 0, [], weights
    if len(args) > len(_NET_ARGS):
        raise TypeError(f"Net() takes at most {len(_NET_ARGS)} arguments "
                        f"({', '.join(_NET_ARGS)}), got {len(args)}")
    given = dict(zip(_NET_ARGS, args))
    for k, v in kwargs.items():
        if k not in _NET_ARGS:
            raise TypeError(f"Net() got an unexpected argument {k!r} (it takes "
                            f"{', '.join(_NET_ARGS)})")
        if k in given:
            raise TypeError(f"Net() got argument {k!r} twice")
        given[k] = v
    if "network_file" not in given:
        raise TypeError("Net() needs a network file or a NetParameter")
    return (given["network_file"], given.get("phase"), given.get("level", 0),
            list(given.get("stages") or []), given.get("weights"))


class Net(net_api.NetApiMixin, net_build.NetBuildMixin):
    def __init__(self, *args, **kwargs):
        from .proto import caffe_pb2
        from .formats.netfile import read_net
        source, phase, level, stages, weights = _parse_args(args, kwargs)
        if isinstance(source, caffe_pb2.NetParameter):
            param = caffe_pb2.NetParameter()
            param.CopyFrom(source)
            self.source = "<NetParameter>"
        else:
            self.source = os.fspath(source)
            param = read_net(self.source)
        if phase is not None or not isinstance(source, caffe_pb2.NetParameter):
            if phase is None:
                raise TypeError("Net(network_file, ...) needs a phase: caffe.TRAIN or caffe.TEST")
            if phase not in (TRAIN, TEST):
                raise CaffeliteError(f"phase must be caffe.TRAIN (0) or caffe.TEST (1), got {phase!r}")
            param.state.phase = phase
            param.state.level = level
            param.state.stage.extend(stages)
        self._init(param)
        if weights:
            self.copy_from(weights)

    # -- construction ---------------------------------------------------------------------
    def _init(self, in_param):
        self.param = in_param
        self.name = in_param.name
        self.phase = in_param.state.phase
        self.debug_info = in_param.debug_info
        net_param = insert_splits(filter_net(in_param))
        self.layers, self._layer_names, self._layer_params = [], [], []
        self._blob_list, self._blob_names, self._blob_index = [], [], {}
        self._bottom_vecs, self._top_vecs, self._bottom_id_vecs, self._top_id_vecs = [], [], [], []
        self._input_ids, self._blob_need_backward = [], []
        self._bottom_need_backward, self._layer_need_backward = [], []
        self._blob_loss_weight = []
        self._params, self._param_owners, self._param_layer_indices = [], [], []
        self._param_id_vecs, self._learnable_param_owner_index = [], []
        self._param_names_index, self._param_display_names = {}, []
        self.learnable_params, self._learnable_param_ids = [], []
        self.params_lr, self.params_weight_decay = [], []
        self._has_lr, self._has_decay = [], []
        self._before_forward, self._after_forward = [], []
        self._before_backward, self._after_backward = [], []
        available = set()
        for layer_id, src_param in enumerate(net_param.layer):
            lp = type(src_param)()
            lp.CopyFrom(src_param)
            if not lp.HasField("phase"):
                lp.phase = self.phase
            if len(lp.propagate_down) not in (0, len(lp.bottom)):
                raise layer_error(lp, f"propagate_down must be given 0 or {len(lp.bottom)} "
                                      f"times (once per bottom), got {len(lp.propagate_down)}")
            layer = create_layer(lp)
            self.layers.append(layer)
            self._layer_names.append(lp.name)
            self._layer_params.append(lp)
            bottoms, bottom_ids, bottom_need = [], [], []
            need_backward = False
            for j, name in enumerate(lp.bottom):
                if name not in available:
                    reason = ("it was already consumed" if name in self._blob_index
                              else "no earlier layer produces it")
                    raise layer_error(lp, f"Unknown bottom blob '{name}' (layer '{lp.name}', "
                                          f"bottom index {j}): {reason}")
                available.discard(name)
                idx = self._blob_index[name]
                need = self._blob_need_backward[idx]
                need_backward |= need
                if lp.propagate_down:
                    need = bool(lp.propagate_down[j])
                bottoms.append(self._blob_list[idx])
                bottom_ids.append(idx)
                bottom_need.append(need)
            tops, top_ids = [], []
            for j, name in enumerate(lp.top):
                if j < len(lp.bottom) and name == lp.bottom[j]:
                    idx = self._blob_index[name]       # in place: reuse the bottom blob
                elif name in self._blob_index:
                    raise layer_error(lp, f"top blob '{name}' is produced by multiple sources "
                                          f"(only top i == bottom i may be computed in place)")
                else:
                    idx = self._new_blob(name)
                if lp.type == "Input":
                    self._input_ids.append(idx)
                available.add(name)
                tops.append(self._blob_list[idx])
                top_ids.append(idx)
            if layer.auto_top_blobs:
                needed = max(layer.min_top or 0, layer.exact_num_top or 0)
                while len(tops) < needed:
                    # Caffe names it "(automatic)", a blob like any other: a net output
                    # unless consumed, in net.blobs (the last such blob under that name)
                    idx = self._new_blob("(automatic)")
                    available.add("(automatic)")
                    tops.append(self._blob_list[idx])
                    top_ids.append(idx)
            self._bottom_vecs.append(bottoms)
            self._bottom_id_vecs.append(bottom_ids)
            self._bottom_need_backward.append(bottom_need)
            self._top_vecs.append(tops)
            self._top_id_vecs.append(top_ids)
            layer.SetUp(bottoms, tops)
            for j, idx in enumerate(top_ids):
                self._blob_loss_weight[idx] = layer.loss(j)
            if len(lp.param) > len(layer.blobs):
                raise layer_error(lp, f"too many param specs: {len(lp.param)} given, the layer "
                                      f"has {len(layer.blobs)} learnable blobs")
            for j in range(len(layer.blobs)):
                spec = lp.param[j] if j < len(lp.param) else None
                param_need = (spec.lr_mult if spec is not None else 1.0) != 0
                need_backward |= param_need
                layer.param_propagate_down[j] = param_need
            self._param_id_vecs.append([])
            for j in range(len(layer.blobs)):
                self._append_param(layer_id, j)
            self._layer_need_backward.append(need_backward)
            if need_backward:
                for idx in top_ids:
                    self._blob_need_backward[idx] = True
        self._infer_backward(net_param.force_backward)
        for layer, need in zip(self.layers, self._layer_need_backward):
            layer.backward_expected = need
        self._output_ids = [self._blob_index[n] for n in sorted(available)]
        self._cache_views()

    def _new_blob(self, name, register=True):
        idx = len(self._blob_list)
        self._blob_list.append(Blob())
        self._blob_names.append(name)
        self._blob_need_backward.append(False)
        self._blob_loss_weight.append(0.0)
        if register:
            self._blob_index[name] = idx
        return idx

    def _cache_views(self):
        self.blobs = OrderedDict(zip(self._blob_names, self._blob_list))
        self.params = OrderedDict((n, l.blobs) for n, l in zip(self._layer_names, self.layers)
                                  if len(l.blobs) > 0)
        self.layer_dict = OrderedDict(zip(self._layer_names, self.layers))
        self.inputs = [self._blob_names[i] for i in self._input_ids]
        self.outputs = [self._blob_names[i] for i in self._output_ids]
        self._inputs = list(self._input_ids)
        self._outputs = list(self._output_ids)
        self.top_names = OrderedDict((n, [self._blob_names[i] for i in ids])
                                     for n, ids in zip(self._layer_names, self._top_id_vecs))
        self.bottom_names = OrderedDict((n, [self._blob_names[i] for i in ids])
                                        for n, ids in zip(self._layer_names, self._bottom_id_vecs))
        self._blob_loss_weights = list(self._blob_loss_weight)
        self.blob_loss_weights = OrderedDict(zip(self._blob_names, self._blob_loss_weight))

    # -- running --------------------------------------------------------------------------
    def _forward(self, start, end):
        """Caffe's ForwardFromTo: layers start..end inclusive; returns the summed loss."""
        loss = 0.0
        for i in range(start, end + 1):
            for fn in self._before_forward:
                fn(i)
            loss += self.layers[i].Forward(self._bottom_vecs[i], self._top_vecs[i])
            if self.debug_info:
                net_debug.forward_info(self, i)
            for fn in self._after_forward:
                fn(i)
        return float(loss)

    def _backward(self, start, end):
        """Caffe's BackwardFromTo: layers start down to end inclusive."""
        for i in range(start, end - 1, -1):
            for fn in self._before_backward:
                fn(i)
            if self._layer_need_backward[i]:
                self.layers[i].Backward(self._top_vecs[i], self._bottom_need_backward[i],
                                        self._bottom_vecs[i])
                if self.debug_info:
                    net_debug.backward_info(self, i)
            for fn in self._after_backward:
                fn(i)

    def forward_prefilled(self):
        return self._forward(0, len(self.layers) - 1)

    def backward_all(self):
        """Caffe's Net::Backward: every layer, then the params' norms under debug_info."""
        self._backward(len(self.layers) - 1, 0)
        if self.debug_info:
            net_debug.all_params_info(self)

    def forward_backward(self):
        loss = self.forward_prefilled()
        self.backward_all()
        return loss

    def reshape(self):
        for layer, bottom, top in zip(self.layers, self._bottom_vecs, self._top_vecs):
            layer.reshape(bottom, top)

    def clear_param_diffs(self):
        for blob in self.learnable_params:
            blob.diff[...] = 0

    def update(self):
        # Caffe 1.0's Net::Update logs nothing under debug_info (its UpdateDebugInfo is
        # never called since the learnable-params rewrite)
        for blob in self.learnable_params:
            blob.update()

    def param_display_name(self, layer_id, j):
        """A param's ParamSpec name, or its index within the layer (as Caffe's logs)."""
        return self._param_display_names[self._param_id_vecs[layer_id][j]]

    def share_with(self, other):
        """Share memory of params with ``other`` by layer name (Caffe's ShareTrainedLayersWith)."""
        for name, src in zip(other._layer_names, other.layers):
            index = self.first_layer_index(name)     # as Caffe: the first layer of the name
            if index is None:
                continue
            dst = self.layers[index]
            if len(dst.blobs) != len(src.blobs):
                raise NetError(f"share_with: Incompatible number of blobs for layer {name}: "
                               f"{len(dst.blobs)} here, {len(src.blobs)} in the source net")
            for i, (d, s) in enumerate(zip(dst.blobs, src.blobs)):
                if d.shape != s.shape:
                    raise NetError(f"share_with: layer '{name}' blob {i} has shape {d.shape} "
                                   f"here and {s.shape} in the source net")
                d.share_data(s)

    def copy_from(self, weights):
        from .formats.weights import copy_trained_layers
        for path in str(weights).split(","):
            copy_trained_layers(self, path.strip())

    def first_layer_index(self, name):
        """Index of the first layer called ``name`` (weights match the first), or None."""
        for i, n in enumerate(self._layer_names):
            if n == name:
                return i
        return None

    def param_owner_map(self):
        """{(layer index, blob index): owner net-param id, or -1 for owners}."""
        return {pos: owner for pos, owner in zip(self._param_layer_indices, self._param_owners)}

    def set_input_arrays(self, data, labels):
        """pycaffe's MemoryData feeding: layer 0 must be a MemoryData layer."""
        from .layer_types.memory_data import set_input_arrays
        set_input_arrays(self, data, labels)

    def save_hdf5(self, path):
        from .formats.hdf5 import write_hdf5_weights
        write_hdf5_weights(self, path)

    def load_hdf5(self, path):
        self.copy_from(path)

    def layer_index(self, name):
        try:
            return self._layer_names.index(name)
        except ValueError:
            raise UnknownLayerError(f"net has no layer named '{name}'") from None

    # pycaffe hooks
    def before_forward(self, fn):
        self._before_forward.append(fn)

    def after_forward(self, fn):
        self._after_forward.append(fn)

    def before_backward(self, fn):
        self._before_backward.append(fn)

    def after_backward(self, fn):
        self._after_backward.append(fn)

    def _bottom_ids(self, i):
        return list(self._bottom_id_vecs[i])

    def _top_ids(self, i):
        return list(self._top_id_vecs[i])
