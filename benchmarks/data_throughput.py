"""Data-layer throughput: a 5,000-image LMDB of encoded 256×256 JPEGs read by the Data layer
with crop 227 + mirror + mean (TRAIN phase, background prefetch), against the images/s a
CaffeNet training step consumes on the same machine.

    python benchmarks/data_throughput.py [--images 5000] [--batch 256] [--batches 20]
"""
import argparse
import io
import os
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import caffelite as caffe  # noqa: E402
from caffelite.proto import caffe_pb2  # noqa: E402
from google.protobuf import text_format  # noqa: E402


def make_lmdb(path, n, size=256, seed=0):
    """n encoded JPEGs of smooth random images (so the files are photo-sized, not noise)."""
    import lmdb
    from PIL import Image
    rng = np.random.default_rng(seed)
    env = lmdb.open(path, map_size=1 << 32)
    yy, xx = np.mgrid[0:size, 0:size] / size
    with env.begin(write=True) as txn:
        for i in range(n):
            f = rng.uniform(1, 6, size=(3, 2))
            img = np.stack([127 + 120 * np.sin(f[c, 0] * 6 * xx + f[c, 1] * 4 * yy + c)
                            for c in range(3)], axis=-1)
            img += rng.normal(0, 8, img.shape)
            buf = io.BytesIO()
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
            d = caffe_pb2.Datum(channels=3, height=size, width=size, data=buf.getvalue(),
                                label=i % 1000, encoded=True)
            txn.put(b"%08d_img%d.jpg" % (i, i), d.SerializeToString())
    env.close()


DATA_NET = """name: "throughput"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ mirror: true crop_size: 227 mean_value: 104 mean_value: 117 mean_value: 123 }}
  data_param {{ source: "{source}" batch_size: {batch} backend: LMDB }} }}
"""


def data_rate(source, batch, batches):
    param = text_format.Parse(DATA_NET.format(source=source, batch=batch),
                              caffe_pb2.NetParameter())
    param.state.phase = caffe.TRAIN
    net = caffe.Net(param)
    net.forward()                      # warm-up: the first batch and the thread start
    t0 = time.perf_counter()
    for _ in range(batches):
        net.forward()
    return batch * batches / (time.perf_counter() - t0)


def caffenet_rate(batch, steps):
    text = open(os.path.join(REPO, "models", "caffenet", "deploy.prototxt")).read()
    param = text_format.Parse(text, caffe_pb2.NetParameter())
    param.layer[0].input_param.shape[0].dim[0] = batch
    label = param.layer[0].input_param.shape.add()
    label.dim.append(batch)
    param.layer[0].top.append("label")
    prob = param.layer[-1]
    prob.type, prob.top[0] = "SoftmaxWithLoss", "loss"
    prob.bottom.append("label")
    param.state.phase = caffe.TRAIN
    net = caffe.Net(param)
    net.blobs["data"].data[...] = np.random.default_rng(0).standard_normal(
        net.blobs["data"].shape)
    net.forward_backward()
    t0 = time.perf_counter()
    for _ in range(steps):
        net.forward_backward()
    return batch * steps / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--caffenet-batch", type=int, default=32)
    ap.add_argument("--caffenet-steps", type=int, default=2)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    try:
        db = os.path.join(tmp, "jpeg_lmdb")
        t0 = time.perf_counter()
        make_lmdb(db, args.images)
        print(f"built {args.images} encoded 256x256 JPEGs in {time.perf_counter() - t0:.1f} s")
        d = data_rate(db, args.batch, args.batches)
        c = caffenet_rate(args.caffenet_batch, args.caffenet_steps)
        print("| what | images/s |")
        print("|---|---|")
        print(f"| Data layer: decode + crop 227 + mirror + mean, batch {args.batch} | {d:.0f} |")
        print(f"| CaffeNet training step (forward+backward), batch {args.caffenet_batch} | "
              f"{c:.1f} |")
        print(f"the data layer supplies {d / c:.0f}x what training consumes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
