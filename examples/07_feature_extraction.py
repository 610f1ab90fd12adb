#!/usr/bin/env python
"""Tutorial 7: features from inner layers, and a linear classifier on top.

A trained net is also a feature extractor: the activations of an inner layer describe an
image, and a simple classifier trained on them may do well with little data (the basis of
transfer learning, see tutorial 4). Two ways to get them:

* `caffelite extract_features WEIGHTS NET BLOBS DBS NUM_BATCHES lmdb`, Caffe's tool: runs
  NET (fed by its own Data layer) and writes each named blob to an LMDB of float Datums;
* from Python: net.forward(), then net.blobs['conv1'].data.

Both are used here on a trained LeNet for conv1, pool1, conv2, pool2 and ip1; then, for each
layer, a caffelite net (InnerProduct + SoftmaxWithLoss) is trained on the features with the
solver API, and its test accuracy printed.

    python examples/07_feature_extraction.py [--fast] [--weights W] [--out DIR]
"""
import os
import shutil

import numpy as np

import common
from common import caffe

DEPLOY = os.path.join(common.REPO, "models", "lenet", "deploy.prototxt")
LAYERS = ["conv1", "pool1", "conv2", "pool2", "ip1"]
BATCH = 100


def extraction_net(out, split, source):
    """LeNet fed by a Data layer (no labels needed) for extract_features."""
    return common.write(os.path.join(out, f"extract_{split}.prototxt"),
                        'name: "LeNet"\n' + common.lmdb_data_layer(source, BATCH)
                        + common.lenet_body()
                        + 'layer { name: "silence" type: "Silence" bottom: "label" }\n')


def read_feature_lmdb(path):
    """An LMDB of float Datums (keys in order) as an (N, C, H, W) float32 array."""
    import lmdb
    from caffelite.proto import caffe_pb2
    env = lmdb.open(path, readonly=True, lock=False)
    items = []
    with env.begin() as txn:
        for _, value in txn.cursor():
            datum = caffe_pb2.Datum()
            datum.ParseFromString(value)
            items.append(caffe.io.datum_to_array(datum))
    env.close()
    return np.asarray(items, dtype=np.float32)


def train_linear(out, name, f_train, y_train, f_test, y_test, iters):
    """A linear softmax classifier on features, trained by caffelite's SGD solver."""
    # Standardise each feature with the training statistics, so that one learning rate
    # suits every layer (their activations differ in scale by orders of magnitude).
    mean, std = f_train.mean(axis=0), f_train.std(axis=0) + 1e-3

    def prep(f):            # N × D -> N × D × 1 × 1, the MemoryData layer's blob shape
        return np.ascontiguousarray(((f - mean) / std)[:, :, None, None], np.float32)
    dims = f_train.shape[1]
    batch = 50
    net_path = common.write(
        os.path.join(out, f"linear_{name}.prototxt"),
        f'name: "linear_{name}"\n'
        + common.memory_data_layer(batch, channels=dims, height=1, width=1, phase="TRAIN")
        + common.memory_data_layer(BATCH, channels=dims, height=1, width=1, phase="TEST")
        + common.ip("score", "data", 10) + common.loss_and_accuracy("score"))
    solver = caffe.get_solver(common.write_solver(
        os.path.join(out, f"linear_{name}_solver.prototxt"), net_path, base_lr=0.001,
        lr_policy="fixed", max_iter=iters, test_iter=len(f_test) // BATCH,
        test_interval=iters + 1, extra="test_initialization: false\n"))
    solver.net.set_input_arrays(*common.trim(prep(f_train), y_train, batch))
    test_net = solver.test_nets[0]
    test_net.set_input_arrays(prep(f_test), y_test)
    test_net.share_with(solver.net)
    solver.step(iters)
    return np.mean([float(test_net.forward()["accuracy"]) for _ in range(len(f_test) // BATCH)])


def main(argv=None):
    args = common.parse_args(
        "07_feature_extraction", __doc__.splitlines()[0], argv,
        extra=lambda p: p.add_argument("--weights", help="a trained LeNet .caffemodel"))
    caffe.set_mode_cpu()
    out = args.out
    n_train, n_test = (300, 200) if args.fast else (3000, 2000)
    weights = args.weights
    if weights is None:
        iters = 30 if args.fast else 500
        print(f"training LeNet for {iters} iterations ...")
        solver = common.train_lenet(out, iters, batch_size=16 if args.fast else 64,
                                    n_train=2000 if args.fast else None)
        weights = os.path.join(out, "lenet.caffemodel")
        solver.net.save(weights)

    # Images for the classifiers: some of MNIST's training images and some of its test
    # images, stored as LMDBs for the extraction net's Data layer.
    rng = np.random.default_rng(0)
    x_all, y_all = common.mnist_bytes("train")
    pick = rng.choice(np.arange(len(x_all))[-20000:], n_train, replace=False)
    data = {"train": (x_all[pick], y_all[pick])}
    x_all, y_all = common.mnist_bytes("test")
    data["test"] = (x_all[:n_test], y_all[:n_test])

    # 1. caffelite extract_features: one LMDB of features per (split, layer).
    features = {}
    for split, (images, labels) in data.items():
        source = common.write_lmdb(os.path.join(out, f"{split}_images_lmdb"), images, labels)
        dbs = [os.path.join(out, f"{split}_{layer}_features") for layer in LAYERS]
        for db in dbs:                     # the tool refuses to overwrite an existing LMDB
            if os.path.isdir(db):
                shutil.rmtree(db)
        print(f"caffelite extract_features ... {','.join(LAYERS)} ... {len(images) // BATCH} "
              f"lmdb  ({split}: {len(images)} images)")
        common.run_caffelite("extract_features", weights, extraction_net(out, split, source),
                             ",".join(LAYERS), ",".join(dbs), len(images) // BATCH, "lmdb",
                             "CPU")
        features[split] = {layer: read_feature_lmdb(db) for layer, db in zip(LAYERS, dbs)}

    # 2. The same from Python: forward the deploy net and read net.blobs. (ip1 is read
    #    after relu1, which works in place on it: both ways give the rectified values.)
    net = caffe.Net(DEPLOY, weights, caffe.TEST)
    net.blobs["data"].reshape(BATCH, 1, 28, 28)
    x_test = data["test"][0][:, None].astype(np.float32) * np.float32(common.MNIST_SCALE)
    from_blobs = {layer: [] for layer in LAYERS}
    for i in range(0, len(x_test), BATCH):
        net.forward(data=x_test[i:i + BATCH])
        for layer in LAYERS:
            from_blobs[layer].append(net.blobs[layer].data.copy())   # copy: the blob is reused
    for layer in LAYERS:
        blobs = np.concatenate(from_blobs[layer])
        tool = features["test"][layer].reshape(blobs.shape)
        print(f"  {layer:6s} {str(blobs.shape[1:]):15s} extract_features vs net.blobs: "
              f"max abs difference {np.abs(tool - blobs).max():.3g}")

    # 3. A linear classifier per layer.
    iters = 60 if args.fast else 1500
    y_train = data["train"][1].astype(np.float32)
    y_test = data["test"][1].astype(np.float32)
    accuracies = {}
    print(f"linear classifiers ({n_train} training / {n_test} test images, {iters} iterations):")
    for layer in LAYERS:
        f_train = features["train"][layer].reshape(n_train, -1)
        f_test = features["test"][layer].reshape(n_test, -1)
        accuracies[layer] = train_linear(out, layer, f_train, y_train, f_test, y_test, iters)
        print(f"  {layer:6s} {f_train.shape[1]:6d} features  accuracy {accuracies[layer]:.4f}")
    best = max(accuracies, key=accuracies.get)
    print(f"best layer: {best} (accuracy {accuracies[best]:.4f})")

    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(LAYERS, [accuracies[layer] for layer in LAYERS], color="C0")
    for bar, layer in zip(bars, LAYERS):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01,
                f"{accuracies[layer]:.3f}", ha="center")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("test accuracy")
    ax.set_xlabel("LeNet layer the features come from")
    ax.set_title(f"linear classifier on LeNet features ({n_train} training images)")
    fig.tight_layout()
    path = os.path.join(out, "accuracy_per_layer.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
