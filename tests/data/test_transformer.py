"""DataTransformer (crop -> mirror -> mean -> scale), OpenCV-style decoding and resizing,
and the prefetch thread: exact numbers against loop references written here."""
import copy
import threading
import time

import numpy as np
import pytest

import caffelite as caffe
from caffelite.data.image import ImageError, decode_image, read_image, resize_linear
from caffelite.data.prefetch import Prefetcher
from caffelite.data.transformer import TEST, TRAIN, DataTransformer
from caffelite.errors import CaffeliteError
from caffelite.io import save_mean_file
from caffelite.proto import caffe_pb2
from caffelite.testing.data_fixtures import encode_image


def tparam(**kw):
    mean_value = kw.pop("mean_value", [])
    p = caffe_pb2.TransformationParameter(**kw)
    p.mean_value.extend(mean_value)
    return p


def reference(x, crop, h_off, w_off, mirror, mean=None, mean_values=(), scale=1.0):
    """Caffe's per-element loop: out[top_index] = (x[data_index] - mean[data_index]) * scale."""
    n, c, h, w = x.shape
    hc, wc = (crop, crop) if crop else (h, w)
    out = np.zeros((n, c, hc, wc), np.float32)
    for i in range(n):
        for ch in range(c):
            for y in range(hc):
                for xx in range(wc):
                    sy, sx = h_off[i] + y, w_off[i] + xx
                    tx = wc - 1 - xx if mirror[i] else xx
                    v = np.float32(x[i, ch, sy, sx])
                    if mean is not None:
                        v = np.float32(v - mean[ch, sy, sx])
                    elif len(mean_values):
                        v = np.float32(v - np.float32(mean_values[ch if len(mean_values) > 1
                                                                  else 0]))
                    out[i, ch, y, tx] = np.float32(v * np.float32(scale))
    return out


def run_with_draws(t, x):
    """Transform x and also return the offsets/flags it drew (from a copy of its rng)."""
    twin = copy.deepcopy(t.rng)
    out = t.transform(x)
    saved, t.rng = t.rng, twin
    draws = t.draw(*x.shape[:1], *x.shape[2:])
    t.rng = saved
    return out, draws


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (6, 3, 7, 9), dtype=np.uint8)


def test_test_phase_centre_crop_mean_value_scale(batch):
    t = DataTransformer(tparam(crop_size=4, mean_value=[10, 20, 30], scale=0.5), TEST)
    out = t.transform(batch)
    n = len(batch)
    ref = reference(batch, 4, [1] * n, [2] * n, [False] * n, mean_values=[10, 20, 30],
                    scale=0.5)
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == np.float32 and t.rng is None  # nothing random in TEST without mirror


def test_no_crop_single_mean_value_and_uint8_vs_float(batch):
    t = DataTransformer(tparam(mean_value=[100], scale=0.25), TEST)
    ref = reference(batch, 0, [0] * 6, [0] * 6, [False] * 6, mean_values=[100], scale=0.25)
    np.testing.assert_array_equal(t.transform(batch), ref)
    np.testing.assert_array_equal(t.transform(batch.astype(np.float32)), ref)


def test_train_random_crop_mirror_mean_file_at_source_pixel(batch, tmp_path):
    rng = np.random.default_rng(0)
    mean = rng.uniform(0, 255, (1, 3, 7, 9)).astype(np.float32)
    save_mean_file(mean, tmp_path / "mean.binaryproto")
    caffe.set_random_seed(11)
    t = DataTransformer(tparam(crop_size=5, mirror=True, scale=0.125,
                               mean_file=str(tmp_path / "mean.binaryproto")), TRAIN)
    out, (h_off, w_off, mirror) = run_with_draws(t, batch)
    ref = reference(batch, 5, h_off, w_off, mirror, mean=mean[0], scale=0.125)
    np.testing.assert_array_equal(out, ref)
    assert mirror.any() and not mirror.all()
    assert len(set(zip(h_off, w_off))) > 1


def test_order_is_mean_then_scale():
    x = np.full((1, 1, 2, 2), 10, np.uint8)
    t = DataTransformer(tparam(mean_value=[4], scale=0.5), TEST)
    np.testing.assert_array_equal(t.transform(x), np.full((1, 1, 2, 2), 3.0, np.float32))


def test_train_offsets_cover_every_position():
    caffe.set_random_seed(1)
    t = DataTransformer(tparam(crop_size=3), TRAIN)
    h_off, w_off, mirror = t.draw(2000, 6, 5)
    assert set(h_off) == {0, 1, 2, 3} and set(w_off) == {0, 1, 2}
    assert not mirror.any()


def test_mirror_applies_in_test_phase(batch):
    x = np.repeat(batch[:1], 40, axis=0)
    t = DataTransformer(tparam(crop_size=5, mirror=True), TEST)
    out = t.transform(x)
    centre = x[0, :, 1:6, 2:7].astype(np.float32)
    flipped = [np.array_equal(o, centre[:, :, ::-1]) for o in out]
    plain = [np.array_equal(o, centre) for o in out]
    assert all(f or p for f, p in zip(flipped, plain))
    assert any(flipped) and any(plain)


def test_seeded_runs_repeat_and_seeds_differ(batch):
    def run(seed):
        caffe.set_random_seed(seed)
        t = DataTransformer(tparam(crop_size=4, mirror=True), TRAIN)
        return t.transform(batch), t.transform(batch)
    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0]) or not np.array_equal(a[1], c[1])


def test_transform_list_crops_items_of_different_sizes_on_their_own():
    rng = np.random.default_rng(2)
    items = [rng.integers(0, 256, s, dtype=np.uint8) for s in
             [(3, 6, 6), (3, 8, 5), (3, 6, 6)]]
    t = DataTransformer(tparam(crop_size=4), TEST)
    out = t.transform_list(items, ["a", "b", "c"])
    for o, x in zip(out, items):
        y0, x0 = (x.shape[1] - 4) // 2, (x.shape[2] - 4) // 2
        np.testing.assert_array_equal(o, x[:, y0:y0 + 4, x0:x0 + 4])
    with pytest.raises(CaffeliteError, match="'b'.*same batch"):
        DataTransformer(tparam(), TEST).transform_list(items, ["'a'", "'b'", "'c'"])


@pytest.mark.parametrize("kw,shape,match", [
    (dict(crop_size=8), (3, 7, 9), "crop_size 8 is larger"),
    (dict(mean_value=[1, 2]), (3, 7, 9), "mean_value.*one per channel"),
    (dict(force_color=True, force_gray=True), None, "force_color and force_gray"),
])
def test_bad_parameters(kw, shape, match):
    with pytest.raises(CaffeliteError, match=match):
        t = DataTransformer(tparam(**kw), TEST)
        t.output_shape(shape)


def test_mean_file_and_mean_value_together_and_wrong_size(tmp_path):
    path = tmp_path / "mean.binaryproto"
    save_mean_file(np.zeros((1, 3, 5, 5), np.float32), path)
    with pytest.raises(CaffeliteError, match="mean_file or mean_value"):
        DataTransformer(tparam(mean_file=str(path), mean_value=[1]), TEST)
    t = DataTransformer(tparam(mean_file=str(path)), TEST)
    with pytest.raises(CaffeliteError, match="mean_file is 3x5x5 but .* is 3x7x9"):
        t.transform(np.zeros((1, 3, 7, 9), np.uint8))
    with pytest.raises(CaffeliteError, match="no such file"):
        DataTransformer(tparam(mean_file=str(tmp_path / "none")), TEST)


# -- OpenCV-compatible image handling -------------------------------------------------------

def opencv_linear_reference(img, height, width):
    """OpenCV's INTER_LINEAR for uint8, one output pixel at a time: 11-bit weights from
    sample positions (d + 0.5) * src / dst - 0.5 (x clamped at the borders, y rows clipped),
    then the vectorised rounding ((r0 >> 4) * b0 >> 16) + ((r1 >> 4) * b1 >> 16) + 2 >> 2."""
    src_h, src_w, ch = img.shape

    def coeffs(d, src, dst, clamp):
        f = np.float32((d + 0.5) * (src / dst) - 0.5)
        s = int(np.floor(f))
        f = np.float32(f - np.float32(s))
        if clamp and s < 0:
            s, f = 0, np.float32(0)
        if clamp and s >= src - 1:
            s, f = src - 1, np.float32(0)
        w0 = int(np.rint((np.float32(1) - f) * np.float32(2048)))
        w1 = int(np.rint(f * np.float32(2048)))
        return min(max(s, 0), src - 1), min(max(s + 1, 0), src - 1), w0, w1

    out = np.zeros((height, width, ch), np.uint8)
    for y in range(height):
        r0, r1, b0, b1 = coeffs(y, src_h, height, False)
        for x in range(width):
            c0, c1, a0, a1 = coeffs(x, src_w, width, True)
            for k in range(ch):
                h0 = (int(img[r0, c0, k]) * a0 + int(img[r0, c1, k]) * a1) >> 4
                h1 = (int(img[r1, c0, k]) * a0 + int(img[r1, c1, k]) * a1) >> 4
                v = ((h0 * b0) >> 16) + ((h1 * b1) >> 16)
                out[y, x, k] = min(max((v + 2) >> 2, 0), 255)
    return out


@pytest.mark.parametrize("src,dst", [((7, 9), (4, 5)), ((5, 4), (11, 13)), ((6, 6), (3, 3)),
                                     ((1, 5), (3, 2)), ((8, 3), (8, 7))])
def test_resize_linear_matches_opencv_rule(src, dst):
    img = np.random.default_rng(sum(src + dst)).integers(0, 256, src + (3,), dtype=np.uint8)
    np.testing.assert_array_equal(resize_linear(img, *dst),
                                  opencv_linear_reference(img, *dst))


def test_resize_halving_averages_2x2_blocks_and_keeps_constants():
    img = np.random.default_rng(0).integers(0, 256, (6, 8, 1), dtype=np.uint8)
    blocks = img.reshape(3, 2, 4, 2, 1).astype(int).sum(axis=(1, 3))
    np.testing.assert_array_equal(resize_linear(img, 3, 4), (blocks + 2) >> 2)
    np.testing.assert_array_equal(resize_linear(np.full((3, 5, 3), 77, np.uint8), 9, 4), 77)


def test_resize_bit_exact_with_opencv_when_installed():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(7)
    for _ in range(30):
        h, w, nh, nw = rng.integers(1, 40, 4)
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(resize_linear(img, nh, nw),
                                      cv2.resize(img, (int(nw), int(nh)),
                                                 interpolation=cv2.INTER_LINEAR))


def test_decode_gives_bgr_planes_and_honours_colour_flags():
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    png = encode_image(bgr, "PNG")
    np.testing.assert_array_equal(decode_image(png), bgr)
    gray = decode_image(png, color=False)
    r, g, b = (bgr[:, :, i].astype(np.uint32) for i in (2, 1, 0))
    np.testing.assert_array_equal(gray[:, :, 0], (9797 * r + 19234 * g + 3737 * b) >> 15)
    plane = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    gpng = encode_image(plane, "PNG")
    assert decode_image(gpng).shape == (4, 3, 1)
    np.testing.assert_array_equal(decode_image(gpng, color=True),
                                  np.repeat(plane[:, :, None], 3, axis=2))
    solid = np.empty((8, 8, 3), np.uint8)
    solid[...] = (200, 50, 10)  # B, G, R
    jpg = decode_image(encode_image(solid, "JPEG", quality=100))
    assert jpg.shape == (8, 8, 3) and np.abs(jpg.astype(int) - solid).max() <= 3


def test_decode_matches_opencv_when_installed():
    cv2 = pytest.importorskip("cv2")
    bgr = np.random.default_rng(2).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    for fmt in ("PNG", "JPEG"):
        buf = encode_image(bgr, fmt)
        raw = np.frombuffer(buf, np.uint8)
        np.testing.assert_array_equal(decode_image(buf, True), cv2.imdecode(raw, 1))
        np.testing.assert_array_equal(decode_image(buf, False)[:, :, 0], cv2.imdecode(raw, 0))


def test_bad_images_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="cannot decode"):
        decode_image(b"not an image", what="record 'k'")
    with pytest.raises(ImageError, match="missing.png"):
        read_image(tmp_path / "missing.png")


# -- prefetch --------------------------------------------------------------------------

def test_prefetcher_keeps_order_and_depth():
    produced = []

    def load():
        produced.append(len(produced))
        return (np.array([produced[-1]]),)

    p = Prefetcher(load, depth=2, name="t")
    assert [int(p.next_batch()[0][0]) for _ in range(5)] == [0, 1, 2, 3, 4]
    time.sleep(0.3)
    assert len(produced) <= 5 + 3  # two queued, one in hand
    p.stop()
    assert not p.alive


def test_prefetcher_reraises_the_loader_error_every_time():
    calls = []

    def load():
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("broken record")
        return (np.zeros(1),)

    p = Prefetcher(load, depth=3)
    p.next_batch()
    for _ in range(2):
        with pytest.raises(ValueError, match="broken record"):
            p.next_batch()
    p.stop()


def test_prefetch_threads_stop_when_stopped():
    before = threading.active_count()
    ps = [Prefetcher(lambda: (np.zeros(1),), depth=1) for _ in range(3)]
    for p in ps:
        p.stop()
    assert all(not p.alive for p in ps)
    assert threading.active_count() <= before
