#!/usr/bin/env python
"""Tutorial 2: learning LeNet from Python with the solver API.

After Caffe's examples/01-learning-lenet: instead of `caffelite train`, Python drives the
solver one step at a time, so it can watch (and plot) anything while the net learns.

    python examples/02_lenet_solver_api.py [--fast] [--iters N] [--out DIR]

Writes lenet_train_test.prototxt, lenet_solver.prototxt and learning_curve.png (training
loss and test accuracy).
"""
import os
import time

import numpy as np

import common
from common import caffe


def main(argv=None):
    args = common.parse_args(
        "02_lenet_solver_api", __doc__.splitlines()[0], argv,
        extra=lambda p: p.add_argument("--iters", type=int, help="training iterations"))
    caffe.set_mode_cpu()
    fast = args.fast
    niter = args.iters or (30 if fast else 500)
    test_interval = max(niter // (10 if fast else 25), 1)   # points on the accuracy curve
    train_batch, test_batch = (16, 50) if fast else (64, 100)
    test_iters = 2 if fast else 10            # test on test_iters * test_batch digits

    # The net: LeNet between two MemoryData layers, one per phase. MemoryData takes its
    # batches from NumPy arrays (set_input_arrays below); a Data layer reading an LMDB, as in
    # models/lenet/train_val.prototxt, would serve just as well.
    net_path = common.write(os.path.join(args.out, "lenet_train_test.prototxt"),
                            'name: "LeNet"\n'
                            + common.memory_data_layer(train_batch, phase="TRAIN")
                            + common.memory_data_layer(test_batch, phase="TEST")
                            + common.lenet_body() + common.loss_and_accuracy())
    # The solver: Caffe's LeNet settings. test_interval is set past the end and
    # test_initialization off because we test from Python, when we choose.
    solver_path = common.write_solver(
        os.path.join(args.out, "lenet_solver.prototxt"), net_path, max_iter=niter,
        test_iter=test_iters, test_interval=niter + 1, extra="test_initialization: false\n")
    solver = caffe.get_solver(solver_path)

    # Feed the data. The train net and the test net are separate nets.
    x_train, y_train = common.load_mnist("train", n=2000 if fast else None)
    x_test, y_test = common.load_mnist("test", n=test_iters * test_batch)
    solver.net.set_input_arrays(*common.trim(x_train, y_train, train_batch))
    solver.test_nets[0].set_input_arrays(x_test, y_test)
    # The test net has its own parameter blobs; make it use the train net's, so it always
    # sees the current weights (Caffe's solver does this before each of its own tests).
    solver.test_nets[0].share_with(solver.net)

    # What is in the nets: (batch, channels, height, width) for every blob and param.
    print("train net blobs:", {k: v.data.shape for k, v in solver.net.blobs.items()})
    print("params:", {k: v[0].data.shape for k, v in solver.net.params.items()})

    train_loss = np.zeros(niter)
    test_acc = []
    t0 = time.perf_counter()
    for it in range(niter):
        solver.step(1)                                   # one SGD step: forward, backward, update
        train_loss[it] = solver.net.blobs["loss"].data   # the loss of that step's batch
        if (it + 1) % test_interval == 0 or it + 1 == niter:
            # Forward the test net over the test digits; 'accuracy' is the Accuracy layer's top.
            acc = np.mean([float(solver.test_nets[0].forward()["accuracy"])
                           for _ in range(test_iters)])
            test_acc.append((it + 1, float(acc)))
            print(f"iter {it + 1:4d}  train loss {train_loss[it]:.4f}  test accuracy {acc:.4f}")
    elapsed = time.perf_counter() - t0
    print(f"{niter} iterations in {elapsed:.1f} s ({niter / elapsed:.1f} iter/s)")

    # Look at a few test predictions: forward once more and compare argmax with the labels.
    solver.test_nets[0].forward()
    scores = solver.test_nets[0].blobs["ip2"].data
    labels = solver.test_nets[0].blobs["label"].data.ravel().astype(int)
    print("first 10 test labels:     ", labels[:10].tolist())
    print("first 10 test predictions:", scores.argmax(axis=1)[:10].tolist())

    plt = common.pyplot()
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax2 = ax1.twinx()
    ax1.plot(np.arange(1, niter + 1), train_loss, color="C0", alpha=0.8)
    its, accs = zip(*test_acc)
    ax2.plot(its, accs, "o-", color="C3")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("train loss", color="C0")
    ax2.set_ylabel(f"test accuracy ({len(x_test)} test digits)", color="C3")
    ax2.set_ylim(0, 1)
    ax1.set_title(f"LeNet on MNIST, solver.step(1) x {niter}")
    fig.tight_layout()
    path = os.path.join(args.out, "learning_curve.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"final test accuracy: {test_acc[-1][1]:.4f}")
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
