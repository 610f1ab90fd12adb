#!/usr/bin/env python
"""Tutorial 3: off-the-shelf SGD on HDF5 data: logistic regression, then a two-layer net.

After Caffe's examples/02-brewing-logreg: caffelite's solver is not only for images. A
synthetic, non-linearly separable dataset (NumPy, seeded) goes to HDF5 files listed in text
files; an HDF5Data layer reads them. A logistic regression (InnerProduct + SoftmaxWithLoss)
is trained first, then a net with one hidden layer (InnerProduct + ReLU + InnerProduct) on
the same data: the hidden layer can bend the decision boundary, so it should do better.

    python examples/03_logistic_regression_hdf5.py [--fast] [--out DIR]
"""
import os

import numpy as np

import common
from common import caffe


def make_dataset(n, seed=0, dims=4):
    """A 2-class problem in `dims` dimensions that no hyperplane separates well.

    Each class is a mixture of Gaussian clusters around vertices of a cube in the first
    three dimensions (as scikit-learn's make_classification builds its data); the classes
    interleave, so a linear classifier gets only part of them right. The remaining
    dimensions are noise."""
    rng = np.random.default_rng(seed)
    vertices = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)]) * 2.0 - 1.0
    vertex_class = np.array([0, 0, 1, 0, 1, 1, 0, 1])   # half the vertices each, interleaved
    which = rng.integers(0, 8, size=n)
    x = rng.normal(scale=0.55, size=(n, dims))
    x[:, :3] += vertices[which]
    y = vertex_class[which]
    return x.astype(np.float32), y.astype(np.float32)


def write_hdf5(out, name, x, y, files=2):
    """Split (x, y) over `files` HDF5 files with datasets 'data' and 'label' (named like the
    HDF5Data layer's tops) and write the list file the layer's `source` points to."""
    import h5py
    paths = []
    for k, (xs, ys) in enumerate(zip(np.array_split(x, files), np.array_split(y, files))):
        path = os.path.join(out, f"{name}_{k}.h5")
        with h5py.File(path, "w") as f:
            f.create_dataset("data", data=xs, compression="gzip")
            f.create_dataset("label", data=ys)
        paths.append(path)
    return common.write(os.path.join(out, f"{name}.txt"), "\n".join(paths) + "\n")


def hdf5_data(source, batch_size, phase):
    return f"""layer {{
  name: "data"
  type: "HDF5Data"
  top: "data"
  top: "label"
  include {{ phase: {phase} }}
  hdf5_data_param {{ source: "{source}" batch_size: {batch_size} shuffle: {str(phase == 'TRAIN').lower()} }}
}}
"""


def fc(name, bottom, num_output):
    return f"""layer {{
  name: "{name}"
  type: "InnerProduct"
  bottom: "{bottom}"
  top: "{name}"
  inner_product_param {{ num_output: {num_output} weight_filler {{ type: "xavier" }} }}
}}
"""


def train(out, name, body, train_list, test_list, n_test, iters, batch=10):
    """Train `body` (layers from 'data' to 'score') with SGD; return [(iter, test acc)]."""
    net_path = common.write(os.path.join(out, f"{name}.prototxt"),
                            f'name: "{name}"\n' + hdf5_data(train_list, batch, "TRAIN")
                            + hdf5_data(test_list, batch, "TEST") + body
                            + common.loss_and_accuracy("score"))
    # Caffe's tutorial settings: SGD with momentum, the rate divided by 10 halfway.
    solver_path = common.write_solver(
        os.path.join(out, f"{name}_solver.prototxt"), net_path, lr_policy="step", gamma=0.1,
        stepsize=max(iters // 2, 1), test_iter=n_test // batch, test_interval=iters + 1,
        max_iter=iters, extra="test_initialization: false\n")
    solver = caffe.get_solver(solver_path)
    test_net = solver.test_nets[0]
    test_net.share_with(solver.net)         # the test net sees the weights being trained
    curve = []
    chunk = max(iters // 10, 1)
    while solver.iter < iters:
        solver.step(min(chunk, iters - solver.iter))
        # One pass over the test set: n_test / batch forwards, each reading the next batch.
        acc = np.mean([float(test_net.forward()["accuracy"]) for _ in range(n_test // batch)])
        curve.append((solver.iter, float(acc)))
    return curve


def main(argv=None):
    args = common.parse_args("03_logistic_regression_hdf5", __doc__.splitlines()[0], argv)
    caffe.set_mode_cpu()
    n_train, n_test = (1000, 500) if args.fast else (8000, 2000)
    iters = 300 if args.fast else 5000

    x, y = make_dataset(n_train + n_test)
    train_list = write_hdf5(args.out, "train", x[:n_train], y[:n_train])
    test_list = write_hdf5(args.out, "test", x[n_train:], y[n_train:], files=1)
    print(f"data: {n_train} train / {n_test} test vectors of {x.shape[1]} features in HDF5, "
          f"class balance {y.mean():.2f}")

    # Logistic regression: one InnerProduct to 2 scores; SoftmaxWithLoss is the logistic loss.
    logreg = train(args.out, "logreg", fc("score", "data", 2), train_list, test_list, n_test,
                   iters)
    # Two layers: 40 hidden ReLU units between input and scores.
    nonlinear = train(args.out, "nonlinear",
                      fc("ip1", "data", 40) + common.relu("relu1", "ip1")
                      + fc("score", "ip1", 2), train_list, test_list, n_test, iters)
    print(f"logistic regression accuracy: {logreg[-1][1]:.4f}")
    print(f"two-layer net accuracy:       {nonlinear[-1][1]:.4f}")

    plt = common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    show = slice(0, 1500)
    ax0.scatter(x[show, 0], x[show, 1], c=y[show], cmap="coolwarm", s=6, alpha=0.6)
    ax0.set_xlabel("feature 0")
    ax0.set_ylabel("feature 1")
    ax0.set_title("the data: 2 of its 4 features (blue: class 0, red: 1)")
    for curve, label in ((logreg, "logistic regression"), (nonlinear, "two-layer net")):
        its, accs = zip(*curve)
        ax1.plot(its, accs, "o-", label=label)
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("test accuracy")
    ax1.set_title("SGD on HDF5 data")
    ax1.legend()
    fig.tight_layout()
    path = os.path.join(args.out, "accuracy.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
