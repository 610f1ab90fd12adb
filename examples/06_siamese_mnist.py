#!/usr/bin/env python
"""Tutorial 6: a siamese network that learns a 2-D embedding of MNIST digits.

After Caffe's examples/siamese: two copies of a LeNet-like branch read the two images of a
pair and map each to a point in the plane. The branches share their parameters (the
ParamSpec `name` fields: a parameter named twice is one blob), and ContrastiveLoss pulls
pairs of the same digit together and pushes other pairs at least `margin` apart. No label
says which digit an image shows, only whether two images show the same one; the digits
still end up in separate clusters.

    python examples/06_siamese_mnist.py [--fast] [--out DIR]
"""
import os

import numpy as np

import common
from common import caffe


def make_pairs(x, y, n, rng):
    """n pairs as 2-channel images (first image, second image) and similarity labels
    (1: same digit, 0: different), half of each."""
    by_digit = [np.flatnonzero(y == d) for d in range(10)]
    first = rng.integers(0, len(x), size=n)
    same = rng.random(n) < 0.5
    second = np.empty(n, dtype=int)
    for k, (i, s) in enumerate(zip(first, same)):
        if s:
            second[k] = rng.choice(by_digit[int(y[i])])
        else:
            other = (int(y[i]) + rng.integers(1, 10)) % 10
            second[k] = rng.choice(by_digit[other])
    pairs = np.concatenate([x[first], x[second]], axis=1)      # (n, 2, 28, 28)
    return np.ascontiguousarray(pairs), same.astype(np.float32)


def siamese_prototxt(batch_size):
    def branch(s):
        """LeNet plus a 2-D 'feat' layer; layer and blob names end in s, parameter names
        do not, so both branches use the same parameters."""
        return (common.lenet_body(bottom="data" + s, suffix=s, share=True)
                + common.ip("feat" + s, "ip2" + s, 2, param_names=("feat_w", "feat_b")))
    return ('name: "mnist_siamese"\n'
            + common.memory_data_layer(batch_size, channels=2, tops=("pair_data", "sim"))
            # Split the 2-channel pair into the two images.
            + """layer {
  name: "slice_pair"
  type: "Slice"
  bottom: "pair_data"
  top: "data"
  top: "data_p"
  slice_param { slice_dim: 1 slice_point: 1 }
}
""" + branch("") + branch("_p") + """layer {
  name: "loss"
  type: "ContrastiveLoss"
  bottom: "feat"
  bottom: "feat_p"
  bottom: "sim"
  top: "loss"
  contrastive_loss_param { margin: 1 }
}
""")


def main(argv=None):
    args = common.parse_args("06_siamese_mnist", __doc__.splitlines()[0], argv)
    caffe.set_mode_cpu()
    out = args.out
    iters, batch = (30, 16) if args.fast else (1500, 64)
    rng = np.random.default_rng(0)

    x, y = common.load_mnist("train", n=5000 if args.fast else None)
    pairs, sim = make_pairs(x, y, batch * 100, rng)
    net_path = common.write(os.path.join(out, "siamese_train.prototxt"), siamese_prototxt(batch))
    # Caffe's siamese solver: no weight decay, the "inv" schedule.
    solver = caffe.get_solver(common.write_solver(
        os.path.join(out, "siamese_solver.prototxt"), net_path, weight_decay=0,
        max_iter=iters))
    solver.net.set_input_arrays(pairs, sim)

    # One parameter blob per shared name: conv1 and conv1_p hold the very same weights.
    w, w_p = solver.net.params["conv1"][0], solver.net.params["conv1_p"][0]
    print(f"{len(solver.net.learnable_params)} learnable blobs for "
          f"{sum(len(b) for b in solver.net.params.values())} layer parameters; "
          f"conv1 and conv1_p share: {np.shares_memory(w.data, w_p.data)}")

    print(f"training the siamese net for {iters} iterations (batch {batch} pairs) ...")
    losses = []
    for it in range(iters):
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data))
        if (it + 1) % max(iters // 5, 1) == 0:
            print(f"  iter {it + 1}: contrastive loss {np.mean(losses[-20:]):.4f}")
    weights = os.path.join(out, "siamese.caffemodel")
    solver.net.save(weights)

    # The embedding: one branch alone, with an Input layer; its layer names match the
    # first branch of the training net, so the trained weights load by name.
    deploy = common.write(os.path.join(out, "siamese_deploy.prototxt"),
                          'name: "mnist_siamese_deploy"\n' + common.input_layer(100)
                          + common.lenet_body() + common.ip("feat", "ip2", 2))
    net = caffe.Net(deploy, weights, caffe.TEST)

    def embed(images):
        return net.forward_all(data=images)["feat"]

    x_test, y_test = common.load_mnist("test", n=1000 if args.fast else 10000)
    feat = embed(x_test)
    feat_train = embed(x[:2000])
    # How well does the 2-D embedding separate digits? Classify each test digit by the
    # nearest class centre of training embeddings: a label-free net, judged with labels.
    centres = np.stack([feat_train[y[:2000] == d].mean(axis=0) for d in range(10)])
    nearest = np.argmin(((feat[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    same = y_test[:-1] == y_test[1:]
    dist = np.linalg.norm(feat[:-1] - feat[1:], axis=1)
    print(f"mean distance of test pairs: same digit {dist[same].mean():.3f}, "
          f"different digits {dist[~same].mean():.3f}")
    print(f"nearest-centre accuracy in the 2-D embedding: {(nearest == y_test).mean():.4f}")

    plt = common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 5.5),
                                   gridspec_kw={"width_ratios": [3, 2]})
    for d in range(10):
        pts = feat[y_test == d]
        ax0.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color=plt.cm.tab10(d), label=str(d))
    ax0.legend(markerscale=4, title="digit", loc="best", fontsize=8)
    ax0.set_title(f"2-D embedding of {len(feat)} test digits")
    ax0.set_xlabel("feat[0]")
    ax0.set_ylabel("feat[1]")
    ax1.plot(np.arange(1, iters + 1), losses, alpha=0.4, label="per batch")
    k = min(20, iters)
    ax1.plot(np.arange(k, iters + 1), np.convolve(losses, np.ones(k) / k, mode="valid"),
             color="C3", label=f"mean of {k}")
    ax1.legend()
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("contrastive loss")
    ax1.set_title("training")
    fig.tight_layout()
    path = os.path.join(out, "embedding.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
