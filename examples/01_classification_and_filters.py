#!/usr/bin/env python
"""Tutorial 1: classify an image with a trained net, then look inside it.

The classic pycaffe flow (Caffe's examples/00-classification), on LeNet and MNIST because no
ImageNet weights ship with caffelite:

1. get weights: train LeNet briefly from Python (or pass --weights lenet.caffemodel);
2. build the deploy net with those weights: caffe.Net(deploy.prototxt, weights, caffe.TEST);
3. preprocess an image file with caffe.io.Transformer and forward it;
4. print the top-5 classes, draw the conv1 filters and the feature maps of conv1, pool1
   and conv2 as image grids.

    python examples/01_classification_and_filters.py [--fast] [--weights W] [--out DIR]
"""
import os

from PIL import Image

import common
from common import caffe

DEPLOY = os.path.join(common.REPO, "models", "lenet", "deploy.prototxt")


def main(argv=None):
    args = common.parse_args(
        "01_classification_and_filters", __doc__.splitlines()[0], argv,
        extra=lambda p: (p.add_argument("--weights", help="a trained LeNet .caffemodel "
                                        "(default: train one here)"),
                         p.add_argument("--iters", type=int, help="training iterations")))
    caffe.set_mode_cpu()
    plt = common.pyplot()

    # 1. Weights. Training here uses the solver API (tutorial 2 explains it); the layer names
    #    of the training net match models/lenet/deploy.prototxt, so the weights carry over.
    weights = args.weights
    if weights is None:
        iters = args.iters or (30 if args.fast else 500)
        batch = 16 if args.fast else 64
        print(f"training LeNet for {iters} iterations (batch {batch}) ...")
        solver = common.train_lenet(args.out, iters, batch_size=batch,
                                    n_train=2000 if args.fast else None)
        weights = os.path.join(args.out, "lenet.caffemodel")
        solver.net.save(weights)

    # 2. The deploy net: an Input blob 'data' instead of a data layer, 'prob' on top.
    net = caffe.Net(DEPLOY, weights, caffe.TEST)
    # One image at a time: reshape the input blob; the rest follows at the next forward.
    net.blobs["data"].reshape(1, 1, 28, 28)

    # 3. An image file: a test digit written as an ordinary 8-bit PNG.
    images, labels = common.mnist_bytes("test")
    index = 0
    image_path = os.path.join(args.out, "digit.png")
    Image.fromarray(images[index]).save(image_path)

    # load_image gives H×W×K floats in [0, 1]; the net wants K×H×W in LeNet's training
    # scale (bytes / 256). The Transformer does that, in pycaffe's fixed order:
    # resize -> transpose -> channel swap -> raw scale -> mean -> input scale.
    image = caffe.io.load_image(image_path, color=False)            # 28×28×1
    transformer = caffe.io.Transformer({"data": net.blobs["data"].data.shape})
    transformer.set_transpose("data", (2, 0, 1))    # H×W×K -> K×H×W
    transformer.set_raw_scale("data", 255)          # [0, 1] -> [0, 255], the bytes
    transformer.set_input_scale("data", common.MNIST_SCALE)  # bytes / 256, as in training
    # An ImageNet net would also call set_mean('data', mean_per_channel) and
    # set_channel_swap('data', (2, 1, 0)) for Caffe's BGR order.
    net.blobs["data"].data[...] = transformer.preprocess("data", image)

    out = net.forward()
    prob = out["prob"][0]
    top5 = prob.argsort()[::-1][:5]
    print(f"input: {image_path} (true label {labels[index]})")
    print("top-5 classes:")
    for rank, k in enumerate(top5, 1):
        print(f"  {rank}. digit {k}  p = {prob[k]:.4f}")
    print(f"predicted: {top5[0]} (p = {prob[top5[0]]:.4f}), true: {labels[index]}")

    # The input and its class probabilities, side by side.
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(8, 3.2), gridspec_kw={"width_ratios": [1, 2]})
    # (transformer.deprocess would undo the preprocessing, but like pycaffe's it squeezes
    # the single grey channel away and then cannot transpose: show the loaded image.)
    ax0.imshow(image[:, :, 0], cmap="gray")
    ax0.set_title(f"input (label {labels[index]})")
    ax0.axis("off")
    ax1.bar(range(10), prob, color=["C1" if k == top5[0] else "C0" for k in range(10)])
    ax1.set_xticks(range(10))
    ax1.set_xlabel("digit")
    ax1.set_ylabel("probability")
    ax1.set_ylim(0, 1)
    ax1.set_title("net.forward()['prob']")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "prediction.png"), dpi=100)
    plt.close(fig)

    # 4. Inside the net. net.params[name][0] is the weight blob, [1] the bias;
    #    net.blobs[name].data is the activation after the last forward.
    for name, blob in net.params.items():
        print(f"  param {name:6s} weights {blob[0].data.shape}  bias {blob[1].data.shape}")
    for name, blob in net.blobs.items():
        print(f"  blob  {name:6s} {blob.data.shape}")
    filters = net.params["conv1"][0].data            # (20, 1, 5, 5)
    paths = [common.save_grid(os.path.join(args.out, "conv1_filters.png"), filters[:, 0],
                              "conv1 filters (20 × 5×5)")]
    for name in ("conv1", "pool1", "conv2"):
        maps = net.blobs[name].data[0]                # (channels, h, w)
        paths.append(common.save_grid(
            os.path.join(args.out, f"{name}_maps.png"), maps,
            f"{name} feature maps ({maps.shape[0]} × {maps.shape[1]}×{maps.shape[2]})"))
    print("wrote", ", ".join(os.path.basename(p) for p in
                             [image_path, os.path.join(args.out, "prediction.png")] + paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
