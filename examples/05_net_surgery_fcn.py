#!/usr/bin/env python
"""Tutorial 5: net surgery, making a classifier fully convolutional.

After Caffe's examples/net_surgery: an InnerProduct layer is a convolution whose kernel
covers its whole input. Reshaping LeNet's ip1 weights (500 × 800 = 500 × 50·4·4) into a
4×4 convolution and ip2's (10 × 500) into a 1×1 convolution gives a net that takes an image
of any size and slides the classifier over it: on a 28·k × 28·k canvas it outputs a map of
class scores, one for every 28×28 window at a stride of 4 pixels (the product of the two
pooling strides). The scores at each position equal the original net's on that crop.

    python examples/05_net_surgery_fcn.py [--fast] [--weights W] [--out DIR]
"""
import os

import numpy as np

import common
from common import caffe

DEPLOY = os.path.join(common.REPO, "models", "lenet", "deploy.prototxt")
STRIDE, WINDOW = 4, 28


def full_conv_prototxt(height, width):
    """LeNet with ip1/ip2 replaced by convolutions named ip1-conv / ip2-conv. The lower
    layers keep their names, so their weights load from a LeNet caffemodel as they are;
    the new names make the loader skip ip1/ip2, which we transplant by hand."""
    def conv_layer(name, bottom, num_output, kernel_size):
        return f"""layer {{
  name: "{name}"
  type: "Convolution"
  bottom: "{bottom}"
  top: "{name}"
  convolution_param {{ num_output: {num_output} kernel_size: {kernel_size} }}
}}
"""
    return ('name: "LeNetFullConv"\n' + common.input_layer(1, 1, height, width)
            + common.conv("conv1", "data", 20, 5) + common.max_pool("pool1", "conv1")
            + common.conv("conv2", "pool1", 50, 5) + common.max_pool("pool2", "conv2")
            + conv_layer("ip1-conv", "pool2", 500, 4)      # pool2 is 50 × 4 × 4 for a digit
            + common.relu("relu1", "ip1-conv")
            + conv_layer("ip2-conv", "ip1-conv", 10, 1)
            # Softmax over axis 1, the channels: a probability vector at every position.
            + 'layer { name: "prob" type: "Softmax" bottom: "ip2-conv" top: "prob" }\n')


def make_canvas(k, seed=0):
    """A 28k × 28k image holding k × k test digits on a grid, and their labels."""
    images, labels = common.mnist_bytes("test")
    pick = np.random.default_rng(seed).choice(len(images), k * k, replace=False)
    canvas = images[pick].reshape(k, k, 28, 28).transpose(0, 2, 1, 3).reshape(28 * k, 28 * k)
    return canvas.astype(np.float32) * np.float32(common.MNIST_SCALE), labels[pick].reshape(k, k)


def main(argv=None):
    args = common.parse_args(
        "05_net_surgery_fcn", __doc__.splitlines()[0], argv,
        extra=lambda p: (p.add_argument("--weights", help="a trained LeNet .caffemodel"),
                         p.add_argument("--iters", type=int, help="training iterations")))
    caffe.set_mode_cpu()
    out = args.out
    weights = args.weights
    if weights is None:
        iters = args.iters or (30 if args.fast else 500)
        print(f"training LeNet for {iters} iterations ...")
        solver = common.train_lenet(out, iters, batch_size=16 if args.fast else 64,
                                    n_train=2000 if args.fast else None)
        weights = os.path.join(out, "lenet.caffemodel")
        solver.net.save(weights)

    # The original classifier and its fully connected parameters.
    net = caffe.Net(DEPLOY, weights, caffe.TEST)
    fc_params = {pr: (net.params[pr][0].data, net.params[pr][1].data) for pr in ("ip1", "ip2")}
    for pr, (w, b) in fc_params.items():
        print(f"{pr} weights are {w.shape}, biases are {b.shape}")

    # The fully convolutional net for a k×k grid of digits, conv1/conv2 loaded by name.
    k = 2 if args.fast else 4
    canvas, canvas_labels = make_canvas(k)
    full_conv = common.write(os.path.join(out, "lenet_full_conv.prototxt"),
                             full_conv_prototxt(*canvas.shape))
    net_full_conv = caffe.Net(full_conv, weights, caffe.TEST)
    conv_params = {pr: (net_full_conv.params[pr][0].data, net_full_conv.params[pr][1].data)
                   for pr in ("ip1-conv", "ip2-conv")}
    for pr, (w, b) in conv_params.items():
        print(f"{pr} weights are {w.shape}, biases are {b.shape}")

    # The surgery: same numbers, new shapes. .flat walks both arrays in C order, which is
    # how InnerProduct flattens its input (channel, then row, then column).
    for pr, pr_conv in zip(("ip1", "ip2"), ("ip1-conv", "ip2-conv")):
        conv_params[pr_conv][0].flat = fc_params[pr][0].flat
        conv_params[pr_conv][1][...] = fc_params[pr][1]
    surgery_weights = os.path.join(out, "lenet_full_conv.caffemodel")
    net_full_conv.save(surgery_weights)

    # Run it on the canvas: one forward gives the class probabilities at every position.
    net_full_conv.blobs["data"].data[0, 0] = canvas
    out_fc = net_full_conv.forward()
    scores = net_full_conv.blobs["ip2-conv"].data[0].copy()       # (10, H', W')
    prob = out_fc["prob"][0].copy()
    rows, cols = prob.shape[1:]
    print(f"input {canvas.shape[0]}×{canvas.shape[1]} -> score map {rows}×{cols} "
          f"(stride {STRIDE}, window {WINDOW})")
    print("argmax class map:")
    for line in prob.argmax(axis=0):
        print("  " + " ".join(str(c) for c in line))
    print("digits on the canvas:", canvas_labels.ravel().tolist())
    # Positions where a window sits exactly on a digit of the grid: every 28 / 4 = 7 steps.
    on_digit = prob.argmax(axis=0)[::WINDOW // STRIDE, ::WINDOW // STRIDE]
    print("predicted at the digit positions:", on_digit.ravel().tolist())

    # The check: every output position against the original net on the matching crop.
    crops = np.stack([canvas[STRIDE * i:STRIDE * i + WINDOW, STRIDE * j:STRIDE * j + WINDOW]
                      for i in range(rows) for j in range(cols)])[:, None]
    net.blobs["data"].reshape(*crops.shape)
    net.forward(data=crops)
    crop_scores = net.blobs["ip2"].data.reshape(rows, cols, 10).transpose(2, 0, 1)
    crop_prob = net.blobs["prob"].data.reshape(rows, cols, 10).transpose(2, 0, 1)
    score_diff = float(np.abs(crop_scores - scores).max())
    prob_diff = float(np.abs(crop_prob - prob).max())
    print(f"max abs difference over {rows * cols} positions: scores {score_diff:.3g}, "
          f"probabilities {prob_diff:.3g}")

    # Surgery survives save and load: a fresh net from the saved caffemodel agrees.
    reloaded = caffe.Net(full_conv, surgery_weights, caffe.TEST)
    reloaded.blobs["data"].data[0, 0] = canvas
    reload_diff = float(np.abs(reloaded.forward()["prob"][0] - prob).max())
    print(f"reloaded {os.path.basename(surgery_weights)}: max abs difference {reload_diff:.3g}")

    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    axes[0].imshow(canvas, cmap="gray")
    axes[0].set_title(f"input {canvas.shape[0]}×{canvas.shape[1]}")
    im = axes[1].imshow(prob.argmax(axis=0), cmap="tab10", vmin=-0.5, vmax=9.5,
                        interpolation="nearest")
    step = WINDOW // STRIDE                  # the windows that sit exactly on a digit
    for i in range(rows):
        for j in range(cols):
            if rows <= 12 or (i % step == 0 and j % step == 0):   # keep big maps legible
                axes[1].text(j, i, str(prob[:, i, j].argmax()), ha="center", va="center",
                             fontsize=10, color="white", fontweight="bold")
    for i in range(0, rows, step):
        for j in range(0, cols, step):
            axes[1].add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2,
                                            edgecolor="black"))
    axes[1].set_title(f"argmax class, {rows}×{cols} positions\n(boxed: windows on a digit)")
    fig.colorbar(im, ax=axes[1], ticks=range(10), fraction=0.046)
    im = axes[2].imshow(prob.max(axis=0), cmap="viridis", vmin=0, vmax=1,
                        interpolation="nearest")
    axes[2].set_title("its probability\n ")
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    path = os.path.join(out, "score_map.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)

    # One map per class: where the net sees each digit.
    grid = os.path.join(out, "class_maps.png")
    fig, axes = plt.subplots(2, 5, figsize=(11, 5))
    for c, ax in enumerate(axes.ravel()):
        ax.imshow(prob[c], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"P(digit {c})")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(grid, dpi=100)
    plt.close(fig)
    print("wrote", path, "and", grid)
    return 0 if max(score_diff, prob_diff, reload_diff) < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
