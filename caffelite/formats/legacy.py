"""V0 and V1 nets (the ``layers`` field) upgraded to the current ``layer`` format, in
Caffe's order: V0 -> V1 (folding ``padding`` layers), data-transform fields out of data
params, then V1 -> current."""
import logging

from ..errors import NetError

log = logging.getLogger("caffelite")

# V0's type strings -> V1's LayerType enum names
_V0_TYPES = {
    "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION",
    "data": "DATA", "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA", "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT", "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS", "pool": "POOLING",
    "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX",
    "softmax_loss": "SOFTMAX_LOSS", "split": "SPLIT", "tanh": "TANH",
    "window_data": "WINDOW_DATA",
}

# V1 LayerType enum names -> current type strings
V1_TYPE_NAMES = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax",
    "BNLL": "BNLL", "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution", "DATA": "Data",
    "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct", "LRN": "LRN", "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split",
    "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")
_DATA_PARAMS = {"DATA": "data_param", "IMAGE_DATA": "image_data_param",
                "WINDOW_DATA": "window_data_param"}


def upgrade_legacy_layers(net_param, source):
    """V0 -> V1, the data-transformation fields, V1 -> current, each logged as Caffe's
    UpgradeNetAsNeeded logs it."""
    if len(net_param.layers) == 0:
        return
    if len(net_param.layer) > 0:
        raise NetError(f"{source}: the net uses both 'layer' and the legacy 'layers' field; "
                       f"a net must use one of them")
    if any(l.HasField("layer") for l in net_param.layers):
        log.info("Attempting to upgrade input file specified using deprecated "
                 "V0LayerParameter: %s", source)
        _v0_to_v1(net_param, source)
        log.info("Successfully upgraded file specified using deprecated V0LayerParameter")
        log.warning("Note that future Caffe releases will not support V0NetParameter; use "
                    "./build/tools/upgrade_net_proto_text for prototxt and "
                    "./build/tools/upgrade_net_proto_binary for model weights upgrade this "
                    "and any other net protos to the new format.")
    if _needs_data_upgrade(net_param):
        log.info("Attempting to upgrade input file specified using deprecated "
                 "transformation parameters: %s", source)
        _upgrade_data_transform(net_param)
        log.info("Successfully upgraded file specified using deprecated data transformation "
                 "parameters.")
        log.warning("Note that future Caffe releases will only support transform_param "
                    "messages for transformation fields.")
    log.info("Attempting to upgrade input file specified using deprecated "
             "V1LayerParameter: %s", source)
    _v1_to_current(net_param, source)
    log.info("Successfully upgraded file specified using deprecated V1LayerParameter")


# -- V0 -> V1 --------------------------------------------------------------------------------

def _fold_padding_layers(net_param, source):
    """V0 'padding' layers become the pad of the conv/pool layer that consumes them."""
    layers = list(net_param.layers)
    producer = {}
    kept = []
    for l in layers:
        v0 = l.layer
        if v0.type == "padding":
            if len(l.bottom) != 1 or len(l.top) != 1:
                raise NetError(f"{source}: padding layer '{v0.name}' needs one bottom and top")
            producer[l.top[0]] = l
            continue
        for j, b in enumerate(l.bottom):
            if b in producer:
                pad_layer = producer[b]
                if v0.type not in ("conv", "pool"):
                    raise NetError(f"{source}: padding layer '{pad_layer.layer.name}' feeds "
                                   f"'{v0.name}' of type '{v0.type}'; only conv and pool "
                                   f"layers can absorb padding")
                l.layer.pad = pad_layer.layer.pad
                l.bottom[j] = pad_layer.bottom[0]
        kept.append(l)
    del net_param.layers[:]
    for l in kept:
        net_param.layers.add().CopyFrom(l)


def _v0_to_v1(net_param, source):
    from ..proto import caffe_pb2
    _fold_padding_layers(net_param, source)
    V1 = caffe_pb2.V1LayerParameter
    for l in net_param.layers:
        if not l.HasField("layer"):
            continue
        v0 = l.layer
        t = v0.type
        if t not in _V0_TYPES:
            raise NetError(f"{source}: V0 layer '{v0.name}' has unknown type '{t}'")
        l.name = v0.name
        l.type = V1.LayerType.Value(_V0_TYPES[t])
        for bp in v0.blobs:
            l.blobs.add().CopyFrom(bp)
        l.blobs_lr.extend(v0.blobs_lr)
        l.weight_decay.extend(v0.weight_decay)
        conv, pool, ip = l.convolution_param, l.pooling_param, l.inner_product_param
        if t in ("conv", "innerproduct"):
            target = conv if t == "conv" else ip
            for f in ("num_output", "weight_filler", "bias_filler"):
                if v0.HasField(f):
                    _set(target, f, getattr(v0, f))
            if v0.HasField("biasterm"):
                target.bias_term = v0.biasterm
        if t == "conv":
            if v0.HasField("pad"):
                conv.pad.append(v0.pad)
            if v0.HasField("kernelsize"):
                conv.kernel_size.append(v0.kernelsize)
            if v0.HasField("stride"):
                conv.stride.append(v0.stride)
            if v0.HasField("group"):
                conv.group = v0.group
        if t == "pool":
            for src, dst in (("pad", "pad"), ("kernelsize", "kernel_size"),
                             ("stride", "stride"), ("pool", "pool")):
                if v0.HasField(src):
                    setattr(pool, dst, getattr(v0, src))
        if t == "dropout" and v0.HasField("dropout_ratio"):
            l.dropout_param.dropout_ratio = v0.dropout_ratio
        if t == "lrn":
            for f in ("local_size", "alpha", "beta", "k"):
                if v0.HasField(f):
                    setattr(l.lrn_param, f, getattr(v0, f))
        data_target = {"data": l.data_param, "hdf5_data": l.hdf5_data_param,
                       "images": l.image_data_param, "window_data": l.window_data_param,
                       "infogain_loss": l.infogain_loss_param}.get(t)
        if v0.HasField("source") and data_target is not None:
            data_target.source = v0.source
        if v0.HasField("batchsize") and t in ("data", "hdf5_data", "images", "window_data"):
            data_target.batch_size = v0.batchsize
        for src, dst in (("scale", "scale"), ("meanfile", "mean_file"),
                         ("cropsize", "crop_size"), ("mirror", "mirror")):
            if v0.HasField(src):
                setattr(l.transform_param, dst, getattr(v0, src))
        if v0.HasField("rand_skip") and t in ("data", "images"):
            data_target.rand_skip = v0.rand_skip
        if t == "images":
            for src, dst in (("shuffle_images", "shuffle"), ("new_height", "new_height"),
                             ("new_width", "new_width")):
                if v0.HasField(src):
                    setattr(l.image_data_param, dst, getattr(v0, src))
        if t == "concat" and v0.HasField("concat_dim"):
            l.concat_param.concat_dim = v0.concat_dim
        if t == "window_data":
            w = l.window_data_param
            for src, dst in (("det_fg_threshold", "fg_threshold"),
                             ("det_bg_threshold", "bg_threshold"),
                             ("det_fg_fraction", "fg_fraction"),
                             ("det_context_pad", "context_pad"),
                             ("det_crop_mode", "crop_mode")):
                if v0.HasField(src):
                    setattr(w, dst, getattr(v0, src))
        if t == "hdf5_output" and v0.HasField("hdf5_output_param"):
            l.hdf5_output_param.CopyFrom(v0.hdf5_output_param)
        l.ClearField("layer")


def _set(msg, field, value):
    if hasattr(value, "CopyFrom"):
        getattr(msg, field).CopyFrom(value)
    else:
        setattr(msg, field, value)


# -- data transformation fields -------------------------------------------------------------

def _needs_data_upgrade(net_param):
    from ..proto import caffe_pb2
    V1 = caffe_pb2.V1LayerParameter
    for l in net_param.layers:
        name = V1.LayerType.Name(l.type)
        if name in _DATA_PARAMS:
            dp = getattr(l, _DATA_PARAMS[name])
            if any(dp.HasField(f) for f in _TRANSFORM_FIELDS):
                return True
    return False


def _upgrade_data_transform(net_param):
    from ..proto import caffe_pb2
    V1 = caffe_pb2.V1LayerParameter
    for l in net_param.layers:
        name = V1.LayerType.Name(l.type)
        if name not in _DATA_PARAMS:
            continue
        dp = getattr(l, _DATA_PARAMS[name])
        for f in _TRANSFORM_FIELDS:
            if dp.HasField(f):
                setattr(l.transform_param, f, getattr(dp, f))
                dp.ClearField(f)


# -- V1 -> current --------------------------------------------------------------------------

def _v1_to_current(net_param, source):
    from ..proto import caffe_pb2
    V1 = caffe_pb2.V1LayerParameter
    param_fields = [f.name for f in V1.DESCRIPTOR.fields
                    if f.name.endswith("_param") and f.name in
                    caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name]
    for v1 in net_param.layers:
        lp = net_param.layer.add()
        lp.name = v1.name
        type_name = V1.LayerType.Name(v1.type)
        if type_name not in V1_TYPE_NAMES:
            raise NetError(f"{source}: V1 layer '{v1.name}' has unknown type {type_name}")
        lp.type = V1_TYPE_NAMES[type_name]
        lp.bottom.extend(v1.bottom)
        lp.top.extend(v1.top)
        for r in v1.include:
            lp.include.add().CopyFrom(r)
        for r in v1.exclude:
            lp.exclude.add().CopyFrom(r)
        for bp in v1.blobs:
            lp.blobs.add().CopyFrom(bp)

        def spec(i):
            while len(lp.param) <= i:
                lp.param.add()
            return lp.param[i]
        for i, name in enumerate(v1.param):
            spec(i).name = name
        for i, mode in enumerate(v1.blob_share_mode):
            spec(i).share_mode = mode
        for i, lr in enumerate(v1.blobs_lr):
            spec(i).lr_mult = lr
        for i, wd in enumerate(v1.weight_decay):
            spec(i).decay_mult = wd
        lp.loss_weight.extend(v1.loss_weight)
        for f in param_fields:
            if v1.HasField(f):
                getattr(lp, f).CopyFrom(getattr(v1, f))
    del net_param.layers[:]
