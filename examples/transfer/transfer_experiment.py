"""The transfer experiment: does a network trained on MNIST digits 0-4 help on digits 5-9?

Source task: every training image of digits 0-4. Target task: digits 5-9 with K labelled
training images per class (K in 10, 100, 1000), evaluated on every 5-9 image of the MNIST test
set. For each K and seed we compare
  (a) scratch:    the same LeNet trained from its fillers on the K*5 images,
  (b) features:   the pretrained net frozen, features from conv1, pool1, conv2, pool2 or ip1
                  feeding a linear classifier (InnerProduct + SoftmaxWithLoss) trained by
                  caffelite,
  (c) ft-all:     fine-tuning every layer from the pretrained weights (new last layer),
  (d) ft-top:     fine-tuning only ip1 and the new last layer (convolutions frozen, lr_mult 0).

    python examples/transfer/transfer_experiment.py [--out DIR] [--seeds 0 1 2] [--fast]

Writes results.json, results.md (mean ± std over seeds) and transfer.png to --out.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import caffelite as caffe  # noqa: E402
from caffelite.cli.convert_mnist import read_idx  # noqa: E402
from caffelite.proto import caffe_pb2  # noqa: E402
from google.protobuf import text_format  # noqa: E402

FEATURE_LAYERS = ["conv1", "pool1", "conv2", "pool2", "ip1"]

LENET = """name: "LeNet5"
layer {{ name: "data" type: "Input" top: "data" top: "label"
  input_param {{ shape {{ dim: {batch} dim: 1 dim: 28 dim: 28 }} shape {{ dim: {batch} }} }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param {{ lr_mult: {conv_lr} }} param {{ lr_mult: {conv_lr2} }}
  convolution_param {{ num_output: 20 kernel_size: 5 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  param {{ lr_mult: {conv_lr} }} param {{ lr_mult: {conv_lr2} }}
  convolution_param {{ num_output: 50 kernel_size: 5 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
  inner_product_param {{ num_output: 500 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{ name: "{last}" type: "InnerProduct" bottom: "ip1" top: "score"
  param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
  inner_product_param {{ num_output: 5 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }}
"""

LINEAR = """name: "linear"
layer {{ name: "data" type: "Input" top: "data" top: "label"
  input_param {{ shape {{ dim: {batch} dim: {dim} }} shape {{ dim: {batch} }} }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "data" top: "score"
  inner_product_param {{ num_output: 5 weight_filler {{ type: "gaussian" std: 0.01 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }}
"""


def load_mnist():
    d = os.path.join(REPO, "data", "mnist")
    tr_x = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))
    tr_y = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))
    te_x = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
    te_y = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
    scale = np.float32(1 / 256.0)  # Caffe's MNIST scale 0.00390625
    return (tr_x[:, None].astype(np.float32) * scale, tr_y.astype(np.int64),
            te_x[:, None].astype(np.float32) * scale, te_y.astype(np.int64))


def net_param(template, **kw):
    p = text_format.Parse(template.format(**kw), caffe_pb2.NetParameter())
    return p


def solver_param(net, base_lr, seed, max_iter):
    s = caffe_pb2.SolverParameter(base_lr=base_lr, momentum=0.9, weight_decay=5e-4,
                                  lr_policy="inv", gamma=1e-4, power=0.75, max_iter=max_iter,
                                  random_seed=seed, display=0, snapshot_after_train=False)
    s.train_net_param.CopyFrom(net)
    return s


def train(solver, x, y, iters, batch, seed):
    """SGD over (x, y) in shuffled minibatches fed through the Input layer."""
    rng = np.random.default_rng(seed)
    order, pos = rng.permutation(len(x)), 0
    data, label = solver.net.blobs["data"], solver.net.blobs["label"]
    for _ in range(iters):
        if pos + batch > len(order):
            order, pos = rng.permutation(len(x)), 0
        idx = order[pos:pos + batch]
        pos += batch
        data.data[...] = x[idx]
        label.data[...] = y[idx]
        solver.step(1)
    return solver


def run_in_batches(net, x, blob_names, batch):
    """Forward x through net (an Input-fed net of batch size ``batch``); collect blobs."""
    out = {b: [] for b in blob_names}
    for i in range(0, len(x), batch):
        chunk = x[i:i + batch]
        n = len(chunk)
        net.blobs["data"].data[:n] = chunk
        net.blobs["data"].data[n:] = 0
        net.forward()
        for b in blob_names:
            out[b].append(net.blobs[b].data[:n].reshape(n, -1).copy())
    return {b: np.concatenate(v) for b, v in out.items()}


def accuracy(net, x, y, batch=500):
    scores = run_in_batches(net, x, ["score"], batch)["score"]
    return float((scores.argmax(axis=1) == y).mean())


def lenet_solver(batch, seed, iters, base_lr=0.01, conv_lr=1, last="ip2"):
    net = net_param(LENET, batch=batch, conv_lr=conv_lr, conv_lr2=2 * conv_lr, last=last)
    net.state.phase = caffe.TRAIN
    return caffe.SGDSolver(solver_param(net, base_lr, seed, iters))


def eval_net(solver, x, y):
    """Copy the trained weights into a batch-500 net and measure accuracy."""
    p = net_param(LENET, batch=500, conv_lr=1, conv_lr2=2, last=solver.net._layer_names[-2])
    p.state.phase = caffe.TEST
    net = caffe.Net(p)
    net.share_with(solver.net)
    return accuracy(net, x, y)


def linear_probe(train_f, train_y, test_f, test_y, seed, iters):
    """A linear softmax classifier trained by caffelite on standardised features."""
    mu, sd = train_f.mean(axis=0), train_f.std(axis=0) + 1e-3
    tr, te = (train_f - mu) / sd, (test_f - mu) / sd
    batch = min(256, len(tr))
    net = net_param(LINEAR, batch=batch, dim=tr.shape[1])
    net.state.phase = caffe.TRAIN
    solver = caffe.SGDSolver(solver_param(net, 0.01, seed, iters))
    train(solver, tr.astype(np.float32), train_y, iters, batch, seed)
    ev = net_param(LINEAR, batch=500, dim=tr.shape[1])
    ev.state.phase = caffe.TEST
    net = caffe.Net(ev)
    net.share_with(solver.net)
    return accuracy(net, te.astype(np.float32), test_y)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "examples", "output", "transfer"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--pretrain-iters", type=int, default=3000)
    ap.add_argument("--fast", action="store_true", help="tiny budgets, for the test suite")
    args = ap.parse_args(argv)
    if args.fast:
        args.seeds, args.ks, args.pretrain_iters = [0], [10], 30
    os.makedirs(args.out, exist_ok=True)
    caffe.set_mode_cpu()
    tr_x, tr_y, te_x, te_y = load_mnist()
    src = tr_y < 5
    tgt_train, tgt_test = tr_y >= 5, te_y >= 5
    test_x, test_y = te_x[tgt_test], te_y[tgt_test] - 5
    if args.fast:
        test_x, test_y = test_x[:500], test_y[:500]
    t0 = time.time()
    print(f"pretraining LeNet on {src.sum()} images of digits 0-4, {args.pretrain_iters} "
          f"iterations", flush=True)
    pre = lenet_solver(64, 1000, args.pretrain_iters)
    train(pre, tr_x[src], tr_y[src], args.pretrain_iters, 64, 1000)
    src_acc = eval_net(pre, te_x[te_y < 5][:500 if args.fast else None],
                       te_y[te_y < 5][:500 if args.fast else None])
    print(f"source accuracy on the 0-4 test digits: {src_acc:.4f} "
          f"({time.time() - t0:.0f} s)", flush=True)
    pretrained = os.path.join(args.out, "pretrained_0to4.caffemodel")
    pre.net.save(pretrained)
    feat_net_p = net_param(LENET, batch=500, conv_lr=1, conv_lr2=2, last="ip2")
    feat_net_p.state.phase = caffe.TEST
    feat_net = caffe.Net(feat_net_p)
    feat_net.copy_from(pretrained)
    test_feats = run_in_batches(feat_net, test_x, FEATURE_LAYERS, 500)
    results = []
    for k in args.ks:
        iters = 30 if args.fast else {10: 300, 100: 600}.get(k, 1500)
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            idx = np.concatenate([rng.choice(np.flatnonzero(tr_y == d), k, replace=False)
                                  for d in range(5, 10)])
            x, y = tr_x[idx], tr_y[idx] - 5
            batch = min(64, len(x))
            row = {"K": k, "seed": seed, "iters": iters}
            s = lenet_solver(batch, seed, iters)
            row["scratch"] = eval_net(train(s, x, y, iters, batch, seed), test_x, test_y)
            s = lenet_solver(batch, seed, iters, last="ip2_target")
            s.net.copy_from(pretrained)
            row["ft-all"] = eval_net(train(s, x, y, iters, batch, seed), test_x, test_y)
            s = lenet_solver(batch, seed, iters, conv_lr=0, last="ip2_target")
            s.net.copy_from(pretrained)
            row["ft-top"] = eval_net(train(s, x, y, iters, batch, seed), test_x, test_y)
            train_feats = run_in_batches(feat_net, x, FEATURE_LAYERS, 500)
            for layer in FEATURE_LAYERS:
                row[f"feat-{layer}"] = linear_probe(train_feats[layer], y, test_feats[layer],
                                                    test_y, seed, iters)
            results.append(row)
            print(json.dumps(row), f"({time.time() - t0:.0f} s)", flush=True)
    summary = summarise(results, args.ks)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"source_accuracy": src_acc, "runs": results}, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(summary)
    print(summary)
    plot(results, args.ks, os.path.join(args.out, "transfer.png"))
    print(f"wrote {args.out}/results.md, results.json, transfer.png "
          f"in {time.time() - t0:.0f} s")
    return results


METHODS = ["scratch"] + [f"feat-{l}" for l in FEATURE_LAYERS] + ["ft-top", "ft-all"]


def summarise(results, ks):
    lines = ["| method | " + " | ".join(f"K = {k}" for k in ks) + " |",
             "|---|" + "---|" * len(ks)]
    for m in METHODS:
        cells = []
        for k in ks:
            v = np.array([r[m] for r in results if r["K"] == k]) * 100
            cells.append(f"{v.mean():.1f} ± {v.std():.1f}" if len(v) else "—")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results, ks, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install 'caffelite[plot]'): no plot written")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in METHODS:
        means = [np.mean([r[m] for r in results if r["K"] == k]) * 100 for k in ks]
        stds = [np.std([r[m] for r in results if r["K"] == k]) * 100 for k in ks]
        style = "-o" if not m.startswith("feat") else "--."
        ax.errorbar(ks, means, yerr=stds, fmt=style, capsize=3, label=m)
    ax.set_xscale("log")
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel("labelled target images per class (K)")
    ax.set_ylabel("accuracy on MNIST test digits 5-9 (%)")
    ax.set_title("Transfer from digits 0-4 to digits 5-9 (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
