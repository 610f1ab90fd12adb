"""Checks on caffelite's copy of the Caffe 1.0 wire schema (caffe_pb2).

Spot-checks field numbers, labels, types, packing and defaults against the
reference (CAFFE_REFERENCE.md section 1), then parses every fixture file
written by real Caffe.
"""

import importlib.util
import pathlib

import pytest
from google.protobuf import descriptor as _d
from google.protobuf import text_format

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load_caffe_pb2():
    try:
        from caffelite.proto import caffe_pb2
        return caffe_pb2
    except ImportError:
        # Fall back to the file itself so a broken package __init__ elsewhere
        # does not hide schema problems.
        path = REPO_ROOT / "caffelite" / "proto" / "caffe_pb2.py"
        spec = importlib.util.spec_from_file_location(
            "caffelite.proto.caffe_pb2", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod


pb = _load_caffe_pb2()

OPT = _d.FieldDescriptor.LABEL_OPTIONAL
REP = _d.FieldDescriptor.LABEL_REPEATED
REQ = _d.FieldDescriptor.LABEL_REQUIRED
T = _d.FieldDescriptor


def field(msg, name):
    return getattr(pb, msg).DESCRIPTOR.fields_by_name[name]


def _label(f):
    # FieldDescriptor.label is deprecated in newest protobuf; keep working
    # on both old and new runtimes.
    if getattr(f, "is_repeated", None) is not None and not callable(f.is_repeated):
        if f.is_repeated:
            return REP
        if getattr(f, "is_required", False):
            return REQ
        return OPT
    return f.label


def _packed(f):
    if hasattr(f, "is_packed"):
        return f.is_packed() if callable(f.is_packed) else f.is_packed
    return f.GetOptions().packed


# (message, field, number, type, label)
NUMBERS = [
    ("LayerParameter", "convolution_param", 106, T.TYPE_MESSAGE, OPT),
    ("LayerParameter", "clip_param", 148, T.TYPE_MESSAGE, OPT),
    ("LayerParameter", "swish_param", 147, T.TYPE_MESSAGE, OPT),
    ("LayerParameter", "recurrent_param", 146, T.TYPE_MESSAGE, OPT),
    ("LayerParameter", "accuracy_param", 102, T.TYPE_MESSAGE, OPT),
    ("LayerParameter", "transform_param", 100, T.TYPE_MESSAGE, OPT),
    ("LayerParameter", "loss_param", 101, T.TYPE_MESSAGE, OPT),
    ("LayerParameter", "phase", 10, T.TYPE_ENUM, OPT),
    ("LayerParameter", "propagate_down", 11, T.TYPE_BOOL, REP),
    ("LayerParameter", "window_data_param", 129, T.TYPE_MESSAGE, OPT),
    ("LayerParameter", "batch_norm_param", 139, T.TYPE_MESSAGE, OPT),
    ("NetParameter", "layer", 100, T.TYPE_MESSAGE, REP),
    ("NetParameter", "layers", 2, T.TYPE_MESSAGE, REP),
    ("NetParameter", "input_dim", 4, T.TYPE_INT32, REP),
    ("SolverParameter", "weights", 42, T.TYPE_STRING, REP),
    ("SolverParameter", "layer_wise_reduce", 41, T.TYPE_BOOL, OPT),
    ("SolverParameter", "random_seed", 20, T.TYPE_INT64, OPT),
    ("SolverParameter", "test_iter", 3, T.TYPE_INT32, REP),
    ("SolverParameter", "stepvalue", 34, T.TYPE_INT32, REP),
    ("SolverParameter", "type", 40, T.TYPE_STRING, OPT),
    ("SolverState", "current_step", 4, T.TYPE_INT32, OPT),
    ("SolverState", "history", 3, T.TYPE_MESSAGE, REP),
    ("BlobProto", "double_data", 8, T.TYPE_DOUBLE, REP),
    ("BlobProto", "num", 1, T.TYPE_INT32, OPT),
    ("BlobShape", "dim", 1, T.TYPE_INT64, REP),
    ("Datum", "float_data", 6, T.TYPE_FLOAT, REP),
    ("ConvolutionParameter", "dilation", 18, T.TYPE_UINT32, REP),
    ("ConvolutionParameter", "kernel_size", 4, T.TYPE_UINT32, REP),
    ("PoolingParameter", "round_mode", 13, T.TYPE_ENUM, OPT),
    ("ClipParameter", "min", 1, T.TYPE_FLOAT, REQ),
    ("ClipParameter", "max", 2, T.TYPE_FLOAT, REQ),
    ("V1LayerParameter", "param", 1001, T.TYPE_STRING, REP),
    ("V1LayerParameter", "blob_share_mode", 1002, T.TYPE_ENUM, REP),
    ("V1LayerParameter", "layer", 1, T.TYPE_MESSAGE, OPT),
    ("V1LayerParameter", "loss_weight", 35, T.TYPE_FLOAT, REP),
    ("V1LayerParameter", "contrastive_loss_param", 40, T.TYPE_MESSAGE, OPT),
    ("V0LayerParameter", "hdf5_output_param", 1001, T.TYPE_MESSAGE, OPT),
    ("V0LayerParameter", "k", 22, T.TYPE_FLOAT, OPT),
    ("V0LayerParameter", "det_crop_mode", 59, T.TYPE_STRING, OPT),
]


@pytest.mark.parametrize("msg,name,number,ftype,label", NUMBERS)
def test_field_numbers(msg, name, number, ftype, label):
    f = field(msg, name)
    assert f.number == number
    assert f.type == ftype
    assert _label(f) == label


# (message, field, default)
DEFAULTS = [
    ("NetState", "phase", pb.TEST),
    ("DataParameter", "backend", pb.DataParameter.LEVELDB),
    ("DataParameter", "prefetch", 4),
    ("ImageDataParameter", "batch_size", 1),
    ("ImageDataParameter", "is_color", True),
    ("PoolingParameter", "round_mode", pb.PoolingParameter.CEIL),
    ("PoolingParameter", "stride", 1),
    ("LossParameter", "normalization", pb.LossParameter.VALID),
    ("FillerParameter", "type", "constant"),
    ("FillerParameter", "std", 1.0),
    ("FillerParameter", "sparse", -1),
    ("ParamSpec", "lr_mult", 1.0),
    ("ParamSpec", "decay_mult", 1.0),
    ("ConvolutionParameter", "bias_term", True),
    ("ConvolutionParameter", "group", 1),
    ("CropParameter", "axis", 2),
    ("EltwiseParameter", "operation", pb.EltwiseParameter.SUM),
    ("HingeLossParameter", "norm", pb.HingeLossParameter.L1),
    ("ReductionParameter", "operation", pb.ReductionParameter.SUM),
    ("FlattenParameter", "end_axis", -1),
    ("ReshapeParameter", "num_axes", -1),
    ("ExpParameter", "base", -1.0),
    ("SolverParameter", "solver_mode", pb.SolverParameter.GPU),
    ("SolverParameter", "snapshot_format", pb.SolverParameter.BINARYPROTO),
    ("SolverParameter", "type", "SGD"),
    ("SolverParameter", "random_seed", -1),
    ("SolverParameter", "clip_gradients", -1.0),
    ("SolverParameter", "regularization_type", "L2"),
    ("SolverParameter", "average_loss", 1),
    ("SolverParameter", "iter_size", 1),
    ("SolverParameter", "test_initialization", True),
    ("SolverParameter", "layer_wise_reduce", True),
    ("WindowDataParameter", "crop_mode", "warp"),
    ("V0LayerParameter", "biasterm", True),
    ("V0LayerParameter", "det_crop_mode", "warp"),
    ("V0LayerParameter", "concat_dim", 1),
]


@pytest.mark.parametrize("msg,name,default", DEFAULTS)
def test_defaults(msg, name, default):
    assert getattr(getattr(pb, msg)(), name) == default
    assert field(msg, name).default_value == default


@pytest.mark.parametrize("msg,name,default", [
    ("SolverParameter", "delta", 1e-8),
    ("SolverParameter", "momentum2", 0.999),
    ("SolverParameter", "rms_decay", 0.99),
    ("BatchNormParameter", "moving_average_fraction", 0.999),
    ("BatchNormParameter", "eps", 1e-5),
    ("MVNParameter", "eps", 1e-9),
    ("LRNParameter", "beta", 0.75),
])
def test_float_defaults(msg, name, default):
    assert getattr(getattr(pb, msg)(), name) == pytest.approx(default, rel=1e-6)


def test_packed():
    assert _packed(field("BlobShape", "dim"))
    for name in ("data", "diff", "double_data", "double_diff"):
        assert _packed(field("BlobProto", name))
    assert not _packed(field("Datum", "float_data"))


def test_no_fork_fields():
    sp = pb.SolverParameter.DESCRIPTOR.fields_by_name
    assert "eval_type" not in sp and "ap_version" not in sp
    assert "ceil_mode" not in pb.PoolingParameter.DESCRIPTOR.fields_by_name
    numbers = {f.number for f in pb.LayerParameter.DESCRIPTOR.fields}
    assert max(numbers) == 148


def test_enums():
    assert pb.Phase.Value("TRAIN") == 0 and pb.Phase.Value("TEST") == 1
    for eng in ("ConvolutionParameter", "PoolingParameter", "LRNParameter",
                "ReLUParameter", "SigmoidParameter", "SoftmaxParameter",
                "TanHParameter", "SPPParameter"):
        e = getattr(pb, eng).Engine
        assert [e.Value(n) for n in ("DEFAULT", "CAFFE", "CUDNN")] == [0, 1, 2]
    lt = pb.V1LayerParameter.LayerType
    assert len(lt.keys()) == 40
    assert sorted(lt.values()) == list(range(40))
    assert lt.Value("DECONVOLUTION") == 39 and lt.Value("SOFTMAX_LOSS") == 21
    assert pb.ParamSpec.DimCheckMode.Value("PERMISSIVE") == 1
    assert pb.V1LayerParameter.DimCheckMode.Value("PERMISSIVE") == 1
    assert pb.V0LayerParameter.PoolMethod.Value("STOCHASTIC") == 2
    assert pb.SolverParameter.SolverType.Value("ADAM") == 5
    assert pb.LossParameter.NormalizationMode.Value("NONE") == 3
    assert pb.ReductionParameter.ReductionOp.Value("MEAN") == 4
    assert pb.HingeLossParameter.Norm.Value("L2") == 2
    assert pb.FillerParameter.VarianceNorm.Value("AVERAGE") == 2


def test_module_name():
    assert pb.LayerParameter.__module__ == "caffelite.proto.caffe_pb2"


def test_text_and_binary_roundtrip():
    net = pb.NetParameter()
    text_format.Merge(
        'name: "t" layer { name: "c" type: "Convolution" bottom: "x" top: "y" '
        'convolution_param { num_output: 2 kernel_size: 3 } '
        'param { lr_mult: 2 } } ', net)
    net2 = pb.NetParameter()
    net2.ParseFromString(net.SerializeToString())
    assert net2 == net
    assert net2.layer[0].convolution_param.kernel_size[:] == [3]


# -- fixtures written by real Caffe -----------------------------------------

def _files(root, pattern):
    found = sorted(root.rglob(pattern))
    assert found, "no %s under %s" % (pattern, root)
    return found


def test_fixture_prototxts_parse(fixtures_dir):
    for p in _files(fixtures_dir, "*.prototxt"):
        msg = pb.SolverParameter() if "solver" in p.name else pb.NetParameter()
        text_format.Merge(p.read_text(), msg)


def test_fixture_caffemodels_parse(fixtures_dir):
    for p in _files(fixtures_dir, "*.caffemodel"):
        net = pb.NetParameter()
        net.ParseFromString(p.read_bytes())
        assert len(net.layer) + len(net.layers) > 0, p


def test_fixture_legacy_files(fixtures_dir):
    legacy = fixtures_dir / "legacy"
    if not legacy.is_dir():
        pytest.skip("no legacy fixtures")
    checked = 0
    for p in sorted(legacy.rglob("*_v[01].*")):
        net = pb.NetParameter()
        if p.suffix == ".caffemodel":
            net.ParseFromString(p.read_bytes())
        elif p.suffix == ".prototxt":
            text_format.Merge(p.read_text(), net)
        else:
            continue
        assert len(net.layers) > 0 and len(net.layer) == 0, p
        if "_v0" in p.name:
            assert all(l.HasField("layer") for l in net.layers), p
        else:
            assert all(l.type != pb.V1LayerParameter.NONE for l in net.layers), p
        checked += 1
    assert checked > 0


def test_fixture_solverstate_and_mean(fixtures_dir):
    for p in sorted(fixtures_dir.rglob("*.solverstate")):
        st = pb.SolverState()
        st.ParseFromString(p.read_bytes())
        assert st.iter > 0 and len(st.history) > 0
    for p in sorted(fixtures_dir.rglob("*.binaryproto")):
        blob = pb.BlobProto()
        blob.ParseFromString(p.read_bytes())
        count = blob.num * blob.channels * blob.height * blob.width
        assert count > 0 and len(blob.data) == count
