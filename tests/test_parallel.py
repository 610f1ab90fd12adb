"""Host-side threads (caffelite.kernels.parallel): the helpers themselves, and every layer
that splits its work gives bit-identical forward and backward results with 1 and 3 threads
(pieces forced down to a handful of elements, so even test-sized arrays are split)."""
import json

import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.kernels import parallel
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, make_blobs
from fixture_paths import find_fixtures_dir


@pytest.fixture
def threads(monkeypatch):
    """Run with n threads and tiny pieces; restores the defaults afterwards."""
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 4)
    old = parallel.num_threads()

    def use(n):
        parallel.set_num_threads(n)
    yield use
    parallel.set_num_threads(old)


# -- helpers ---------------------------------------------------------------------------------
def test_split_covers_range_evenly():
    parts = parallel.split(10, 3)
    assert parts == [slice(0, 4), slice(4, 7), slice(7, 10)]
    assert parallel.split(2, 2) == [slice(0, 1), slice(1, 2)]


def test_for_slices_runs_every_item_once(threads):
    threads(3)
    seen = np.zeros(100, dtype=int)
    parallel.for_slices(100, lambda s: seen.__setitem__(s, seen[s] + 1), 10 ** 6)
    assert (seen == 1).all()


def test_for_slices_propagates_worker_errors(threads):
    threads(3)

    def fn(s):
        if s.start > 0:
            raise ValueError(f"piece {s}")
    with pytest.raises(ValueError, match="piece"):
        parallel.for_slices(9, fn, 10 ** 6)


def test_nested_calls_do_not_deadlock(threads):
    threads(2)
    out = np.zeros((4, 6))

    def outer(s):
        parallel.for_slices(6, lambda t: out.__setitem__((s, t), 1.0), 10 ** 6)
    parallel.for_slices(4, outer, 10 ** 6)
    assert (out == 1).all()


def test_copy_and_ufunc_match_numpy(threads):
    threads(3)
    rng = np.random.default_rng(0)
    src = rng.random((5, 7, 9)).astype(np.float32)
    dst = np.empty((7, 5, 9), np.float32)
    parallel.copy(dst, src.transpose(1, 0, 2))
    assert np.array_equal(dst, src.transpose(1, 0, 2))
    bias = rng.random((1, 5, 1)).astype(np.float32)
    out = np.empty_like(dst)
    parallel.ufunc(np.add, dst, bias, out=out)
    assert np.array_equal(out, dst + bias)


def test_set_num_threads_validates(threads):
    with pytest.raises(ValueError, match="at least 1"):
        parallel.set_num_threads(0)


def test_thread_count_from_environment(monkeypatch):
    monkeypatch.setenv("CAFFELITE_NUM_THREADS", "3")
    assert parallel._default_threads() == 3
    monkeypatch.setenv("CAFFELITE_NUM_THREADS", "three")
    with pytest.raises(ValueError, match="CAFFELITE_NUM_THREADS"):
        parallel._default_threads()
    monkeypatch.delenv("CAFFELITE_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert parallel._default_threads() == 2


# -- layers: 1 thread and 3 threads agree bit for bit ----------------------------------------
LAYERS = {
    "conv_batch_last": ('type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 '
                        'pad: 1 stride: 2 weight_filler { type: "gaussian" } '
                        'bias_filler { type: "gaussian" } }', (5, 3, 9, 9)),
    "conv_batch_inside": ('type: "Convolution" convolution_param { num_output: 4 kernel_h: 3 '
                          'kernel_w: 2 group: 2 dilation: 2 weight_filler { type: "gaussian" } '
                          'bias_filler { type: "gaussian" } }', (3, 4, 10, 40)),
    "conv_per_image": ('type: "Convolution" convolution_param { num_output: 3 kernel_size: 3 '
                       'pad: 2 weight_filler { type: "gaussian" } '
                       'bias_filler { type: "gaussian" } }', (3, 2, 24, 24)),
    "conv_1x1_per_image": ('type: "Convolution" convolution_param { num_output: 3 '
                           'kernel_size: 1 weight_filler { type: "gaussian" } }', (2, 4, 24, 24)),
    "conv_depthwise": ('type: "Convolution" convolution_param { num_output: 6 group: 6 '
                       'kernel_size: 3 pad: 1 weight_filler { type: "gaussian" } '
                       'bias_filler { type: "gaussian" } }', (4, 6, 7, 7)),
    "conv_depthwise_per_image": ('type: "Convolution" convolution_param { num_output: 4 '
                                 'group: 4 kernel_size: 3 pad: 1 weight_filler { type: '
                                 '"gaussian" } }', (2, 4, 24, 24)),
    "deconv": ('type: "Deconvolution" convolution_param { num_output: 3 kernel_size: 4 '
               'stride: 2 pad: 1 weight_filler { type: "gaussian" } }', (4, 2, 6, 6)),
    "pool_max_pad_ceil": ('type: "Pooling" pooling_param { pool: MAX kernel_size: 3 stride: 2 '
                          'pad: 1 }', (5, 3, 8, 7)),
    "pool_ave_pad": ('type: "Pooling" pooling_param { pool: AVE kernel_size: 3 stride: 2 '
                     'pad: 1 }', (5, 3, 8, 7)),
    "lrn_across": ('type: "LRN" lrn_param { local_size: 5 alpha: 0.1 beta: 0.75 }',
                   (5, 7, 4, 3)),
    "lrn_within": ('type: "LRN" lrn_param { local_size: 3 alpha: 0.1 beta: 0.75 '
                   'norm_region: WITHIN_CHANNEL }', (5, 2, 6, 5)),
    "relu": ('type: "ReLU"', (5, 3, 4, 4)),
    "relu_leaky": ('type: "ReLU" relu_param { negative_slope: 0.1 }', (5, 3, 4, 4)),
}


def _run_layer(spec, shape, n_threads, threads, in_place=False):
    threads(n_threads)
    caffe.set_random_seed(7)
    top = "x" if in_place else "y"
    lp = text_format.Parse(f'name: "l" bottom: "x" top: "{top}" {spec}',
                           caffe_pb2.LayerParameter())
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    bottom = make_blobs([x], dtype=np.float32)
    layer, tops = build_layer(lp, bottom, dtype=np.float32)
    if in_place:
        tops = bottom
    layer.Forward(bottom, tops)
    out = tops[0].data.copy()
    tops[0].diff[...] = rng.standard_normal(tops[0].shape).astype(np.float32)
    for b in layer.blobs:
        b.diff[...] = 0
    layer.Backward(tops, [True], bottom)
    return [out, bottom[0].diff.copy()] + [b.diff.copy() for b in layer.blobs]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_same_bits_with_threads(name, threads):
    spec, shape = LAYERS[name]
    one = _run_layer(spec, shape, 1, threads)
    three = _run_layer(spec, shape, 3, threads)
    for a, b in zip(one, three):
        assert a.dtype == b.dtype and np.array_equal(a, b), name


@pytest.mark.parametrize("name", ["lrn_across", "relu", "relu_leaky"])
def test_in_place_layer_same_bits_with_threads(name, threads):
    spec, shape = LAYERS[name]
    one = _run_layer(spec, shape, 1, threads, in_place=True)
    three = _run_layer(spec, shape, 3, threads, in_place=True)
    for a, b in zip(one, three):
        assert np.array_equal(a, b), name


# -- Caffe's own numbers, with every piece split -----------------------------------------------
def _fixture_cases():
    root = find_fixtures_dir()
    if root is None:
        return []
    wanted = ("Convolution", "Deconvolution", "Pooling", "LRN", "ReLU", "Eltwise")
    cases = []
    for kind in ("layers", "nets"):
        for case_dir in sorted((root / kind).iterdir()):
            meta = json.loads((case_dir / "case.json").read_text())
            if meta.get("check") == "net" and set(meta.get("layer_types", [])) & set(wanted):
                cases.append(pytest.param(case_dir, id=f"{kind}/{case_dir.name}"))
    return cases


@pytest.mark.parametrize("case_dir", _fixture_cases())
def test_caffe_fixture_with_threads(case_dir, threads):
    threads(3)
    replay_net_case(case_dir)



@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_forked_child_gets_a_working_pool(threads):
    import multiprocessing as mp
    threads(2)
    parallel.for_slices(8, lambda s: None, 10 ** 6)          # the parent's pool exists
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        result = pool.apply_async(_sum_in_pieces, (1000,))
        assert result.get(timeout=20) == sum(range(1000))


def _sum_in_pieces(n):
    parallel.MIN_ELEMENTS = 4                       # the thread count is the parent's: 2
    out = np.zeros(n, dtype=np.int64)
    parallel.for_slices(n, lambda s: out.__setitem__(s, np.arange(s.start, s.stop)), n * 100)
    return int(out.sum())
