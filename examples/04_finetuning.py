#!/usr/bin/env python
"""Tutorial 4: fine-tuning with the command line.

After Caffe's fine-tuning examples (flickr_style, 02-fine-tuning), on MNIST: a LeNet learns
digits 0-4 (the "big" source task), then its weights start a net for a new, small task,
digits 5-9 with a few labelled images each:

    caffelite train --solver ft_solver.prototxt --weights pretrained.caffemodel

The fine-tuning net keeps the layer names of the layers to reuse (conv1, conv2, ip1: their
weights are copied by name), renames the last layer (ip2 -> ip2_ft, now num_output 5: it
starts from its filler because no layer of that name is in the weights file), and lowers
lr_mult on the lower layers, which already compute useful features. The same net trained
from scratch for the same number of iterations shows what the pretrained weights are worth.

    python examples/04_finetuning.py [--fast] [--out DIR]
"""
import os
import re

import numpy as np

import common

SOURCE_DIGITS, TARGET_DIGITS = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]


def make_data(out, fast, per_class, seed=0):
    """Three LMDBs of Datums: the source task, the small target training set (labels 5..9
    become 0..4 for the 5-way classifier) and the target test set."""
    rng = np.random.default_rng(seed)
    x, y = common.mnist_bytes("train", SOURCE_DIGITS)
    order = rng.permutation(len(x))[:2000 if fast else None]
    common.write_lmdb(os.path.join(out, "source_train_lmdb"), x[order], y[order])

    x, y = common.mnist_bytes("train", TARGET_DIGITS)
    pick = np.concatenate([rng.choice(np.flatnonzero(y == d), per_class, replace=False)
                           for d in TARGET_DIGITS])
    pick = rng.permutation(pick)
    common.write_lmdb(os.path.join(out, "target_train_lmdb"), x[pick], y[pick] - 5)

    x, y = common.mnist_bytes("test", TARGET_DIGITS)
    n_test = 100 if fast else len(x) - len(x) % 100
    common.write_lmdb(os.path.join(out, "target_test_lmdb"), x[:n_test], y[:n_test] - 5)
    return n_test


def test_curve(log):
    """[(iteration, accuracy)] from the solver's test lines in a caffelite (or Caffe) log."""
    curve, it = [], None
    for line in log.splitlines():
        m = re.search(r"Iteration (\d+), Testing net", line)
        if m:
            it = int(m.group(1))
        m = re.search(r"Test net output #\d+: accuracy = ([\d.eE+-]+)", line)
        if m and it is not None:
            curve.append((it, float(m.group(1))))
    return curve


def main(argv=None):
    args = common.parse_args("04_finetuning", __doc__.splitlines()[0], argv)
    out = args.out
    fast = args.fast
    per_class = 20 if fast else 100                 # labelled target images per digit
    pre_iters, ft_iters = (15, 15) if fast else (1000, 300)
    batch, test_batch = (16, 50) if fast else (64, 100)

    n_test = make_data(out, fast, per_class)
    print(f"source task: digits {SOURCE_DIGITS}; target task: digits {TARGET_DIGITS} with "
          f"{per_class} training images each, tested on {n_test} test images")

    # 1. Pretrain on the source task; the solver snapshots <prefix>_iter_N.caffemodel at the
    #    end (snapshot_after_train defaults to true).
    pre_net = common.write(os.path.join(out, "pretrain_train.prototxt"),
                           'name: "LeNet"\n'
                           + common.lmdb_data_layer(os.path.join(out, "source_train_lmdb"),
                                                    batch) + common.lenet_body()
                           + common.loss_and_accuracy())
    pre_solver = common.write_solver(
        os.path.join(out, "pretrain_solver.prototxt"), pre_net, max_iter=pre_iters,
        extra=f'snapshot_prefix: "{os.path.join(out, "pretrain")}"\n')
    print(f"pretraining on digits 0-4 for {pre_iters} iterations ...")
    common.run_caffelite("train", "--solver", pre_solver)
    pretrained = os.path.join(out, f"pretrain_iter_{pre_iters}.caffemodel")

    # 2. The target net: same layer names up to ip1, a new last layer ip2_ft with 5 outputs.
    def target_net(name, lr_mults):
        return common.write(
            os.path.join(out, f"{name}_train_test.prototxt"),
            f'name: "{name}"\n'
            + common.lmdb_data_layer(os.path.join(out, "target_train_lmdb"), batch, "TRAIN")
            + common.lmdb_data_layer(os.path.join(out, "target_test_lmdb"), test_batch, "TEST")
            + common.lenet_body(num_output=5, last="ip2_ft", lr_mults=lr_mults)
            + common.loss_and_accuracy("ip2_ft"))

    def solver_for(name, net):
        return common.write_solver(
            os.path.join(out, f"{name}_solver.prototxt"), net, max_iter=ft_iters,
            test_iter=n_test // test_batch, test_interval=max(ft_iters // (3 if fast else 10), 1),
            extra="snapshot_after_train: false\n")

    # Fine-tuning: the convolutions learn at a tenth of the rate; ip1 and the new ip2_ft at
    # the full rate.
    ft_solver = solver_for("ft", target_net("ft", {"conv1": 0.1, "conv2": 0.1}))
    # From scratch: the same architecture, every layer at the full rate.
    scratch_solver = solver_for("scratch", target_net("scratch", {}))

    print(f"fine-tuning for {ft_iters} iterations: caffelite train --solver ft_solver.prototxt "
          f"--weights {os.path.basename(pretrained)}")
    ft_log = common.run_caffelite("train", "--solver", ft_solver, "--weights", pretrained)
    # What the log says about the weights (once for the train net, once for the test net):
    # ip2 is in the file but not in the net, so it is skipped; ip2_ft keeps its filler.
    for line in ft_log.splitlines():
        if "Finetuning from" in line or "Ignoring source layer" in line:
            print("   ", line.split("] ", 1)[-1])
    print(f"training from scratch for {ft_iters} iterations ...")
    scratch_log = common.run_caffelite("train", "--solver", scratch_solver)
    with open(os.path.join(out, "ft.log"), "w") as f:
        f.write(ft_log)
    with open(os.path.join(out, "scratch.log"), "w") as f:
        f.write(scratch_log)

    ft_curve, scratch_curve = test_curve(ft_log), test_curve(scratch_log)
    # Pretrained features pay off most early on, before the scratch net has learnt its own.
    print(f"after {ft_curve[1][0]} iterations: fine-tuned {ft_curve[1][1]:.4f}, "
          f"from scratch {scratch_curve[1][1]:.4f}")
    print(f"fine-tuned accuracy:   {ft_curve[-1][1]:.4f}")
    print(f"from-scratch accuracy: {scratch_curve[-1][1]:.4f}")

    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for curve, label in ((ft_curve, "fine-tuned from digits 0-4"),
                         (scratch_curve, "from scratch")):
        its, accs = zip(*curve)
        ax.plot(its, accs, "o-", label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("test accuracy on digits 5-9")
    ax.set_ylim(0, 1)
    ax.set_title(f"digits 5-9 with {per_class} training images per class")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = os.path.join(out, "finetune_vs_scratch.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
