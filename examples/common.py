"""Shared helpers for the caffelite tutorials in this folder.

Each tutorial is a script: ``python examples/0N_name.py [--fast] [--out DIR]``. The helpers
here keep the tutorials short: command-line flags, MNIST loading, the LeNet prototxt with a
data layer of your choice, a brief LeNet training run through the solver API, and image
grids for filters and feature maps.
"""
import argparse
import functools
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:            # run from a clone without installing caffelite
    sys.path.insert(0, REPO)

import caffelite as caffe  # noqa: E402

MNIST_DIR = os.path.join(REPO, "data", "mnist")
# Caffe's MNIST scale: bytes 0..255 become 0..255/256 (transform_param { scale: 0.00390625 }).
MNIST_SCALE = 0.00390625


# -- command line -----------------------------------------------------------------------------

def parse_args(name, description, argv=None, extra=None):
    """--fast and --out DIR for every tutorial; ``extra(parser)`` adds its own flags.

    The output folder defaults to examples/output/<name>/ and is created."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--fast", action="store_true",
                        help="tiny iteration counts and data subsets (a few seconds)")
    parser.add_argument("--out", default=os.path.join(HERE, "output", name),
                        help="folder for figures, prototxts and weights "
                             "(default: examples/output/%s/)" % name)
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    return args


def pyplot():
    """matplotlib's pyplot with the file-only Agg backend (the `plot` extra)."""
    try:
        import matplotlib
    except ImportError:
        sys.exit("these tutorials draw with matplotlib: pip install 'caffelite[plot]'")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# -- MNIST ------------------------------------------------------------------------------------

def load_mnist(split, n=None, digits=None, scale=MNIST_SCALE):
    """MNIST ``split`` ('train' or 'test') as (images N×1×28×28 float32, labels N float32).

    Read from the idx files in data/mnist. ``digits`` keeps only those classes; ``n`` keeps
    the first n images (after the class filter). Pixels are scaled as Caffe's LeNet does."""
    images, labels = mnist_bytes(split, digits)
    if n is not None:
        images, labels = images[:n], labels[:n]
    x = (images.astype(np.float32) * np.float32(scale))[:, None, :, :]
    return np.ascontiguousarray(x), labels.astype(np.float32)


def write_lmdb(path, images, labels):
    """Write uint8 images (N×H×W or N×C×H×W) and labels as an LMDB of Datums, the format
    Caffe's Data layer (and `caffelite convert_mnist_data`) uses: keys %08d, in order.
    An LMDB already at ``path`` (from an earlier run) is replaced."""
    import shutil
    import lmdb
    if os.path.isdir(path):
        shutil.rmtree(path)
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim == 3:
        images = images[:, None]
    env = lmdb.open(path, map_size=max(1 << 24, 4 * images.nbytes))
    with env.begin(write=True) as txn:
        for i, (im, label) in enumerate(zip(images, labels)):
            txn.put(b"%08d" % i, caffe.io.array_to_datum(im, int(label)).SerializeToString())
    env.close()
    return path


@functools.lru_cache(maxsize=2)
def _read_mnist(split):
    from caffelite.cli.convert_mnist import read_idx
    prefix = {"train": "train", "test": "t10k"}[split]
    images = read_idx(os.path.join(MNIST_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(MNIST_DIR, f"{prefix}-labels-idx1-ubyte.gz")).astype(int)
    return images, labels


def mnist_bytes(split, digits=None):
    """MNIST ``split`` as raw (uint8 images N×28×28, int labels N), optionally some digits.

    Read from the idx files in data/mnist (once per process)."""
    images, labels = _read_mnist(split)
    if digits is not None:
        keep = np.isin(labels, digits)
        images, labels = images[keep], labels[keep]
    return images, labels


def run_caffelite(*args, check=True):
    """Run the `caffelite` command (as `python -m caffelite`, so that an uninstalled clone
    works too) and return its log (glog lines on stderr) as text."""
    import subprocess
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "caffelite", *map(str, args)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and proc.returncode != 0:
        sys.exit(f"caffelite {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                 f"{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def trim(x, y, batch_size):
    """Cut (x, y) to a multiple of batch_size: MemoryData serves whole batches only."""
    n = len(x) - len(x) % batch_size
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(y[:n])


# -- prototxt ---------------------------------------------------------------------------------

def memory_data_layer(batch_size, channels=1, height=28, width=28, name="data",
                      tops=("data", "label"), phase=None):
    """A MemoryData layer: the net's batches come from arrays given to set_input_arrays."""
    include = f"\n  include {{ phase: {phase} }}" if phase else ""
    return f"""layer {{
  name: "{name}"
  type: "MemoryData"
  top: "{tops[0]}"
  top: "{tops[1]}"{include}
  memory_data_param {{ batch_size: {batch_size} channels: {channels} height: {height} width: {width} }}
}}
"""


def lmdb_data_layer(source, batch_size, phase=None, scale=MNIST_SCALE, name="data"):
    """A Data layer reading Datums from an LMDB, scaling the bytes as Caffe's LeNet does."""
    include = f"\n  include {{ phase: {phase} }}" if phase else ""
    return f"""layer {{
  name: "{name}"
  type: "Data"
  top: "data"
  top: "label"{include}
  transform_param {{ scale: {scale} }}
  data_param {{ source: "{os.path.abspath(source)}" batch_size: {batch_size} backend: LMDB }}
}}
"""


def input_layer(batch_size, channels=1, height=28, width=28, name="data"):
    return f"""layer {{
  name: "{name}"
  type: "Input"
  top: "{name}"
  input_param {{ shape: {{ dim: {batch_size} dim: {channels} dim: {height} dim: {width} }} }}
}}
"""


def _learnable(kind, name, bottom, top, body, lr_mult=1, param_names=None):
    specs = ""
    for pname, mult in zip(param_names or (None, None), (lr_mult, 2 * lr_mult)):
        shared = 'name: "%s" ' % pname if pname else ""
        specs += f"\n  param {{ {shared}lr_mult: {mult} }}"
    return f"""layer {{
  name: "{name}"
  type: "{kind}"
  bottom: "{bottom}"
  top: "{top}"{specs}
  {body}
}}
"""


def conv(name, bottom, num_output, kernel_size, lr_mult=1, param_names=None):
    return _learnable("Convolution", name, bottom, name,
                      f"convolution_param {{ num_output: {num_output} kernel_size: {kernel_size}"
                      f" weight_filler {{ type: \"xavier\" }} }}", lr_mult, param_names)


def ip(name, bottom, num_output, lr_mult=1, param_names=None):
    return _learnable("InnerProduct", name, bottom, name,
                      f"inner_product_param {{ num_output: {num_output}"
                      f" weight_filler {{ type: \"xavier\" }} }}", lr_mult, param_names)


def max_pool(name, bottom):
    return f"""layer {{
  name: "{name}"
  type: "Pooling"
  bottom: "{bottom}"
  top: "{name}"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }}
}}
"""


def relu(name, blob):
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "{blob}" top: "{blob}" }}\n'


def lenet_body(bottom="data", num_output=10, last="ip2", lr_mults=None, suffix="",
               share=False):
    """LeNet from conv1 to the class scores (Caffe's examples/mnist/lenet_train_test).

    ``lr_mults`` maps layer names to lr_mult (fine-tuning freezes or slows lower layers);
    ``suffix`` renames every layer and blob (the siamese branch '_p'); ``share`` names the
    params so that two branches built with different suffixes share them."""
    lr = dict(lr_mults or {})
    s = suffix

    def pn(layer):
        return (f"{layer}_w", f"{layer}_b") if share else None
    return (conv("conv1" + s, bottom, 20, 5, lr.get("conv1", 1), pn("conv1"))
            + max_pool("pool1" + s, "conv1" + s)
            + conv("conv2" + s, "pool1" + s, 50, 5, lr.get("conv2", 1), pn("conv2"))
            + max_pool("pool2" + s, "conv2" + s)
            + ip("ip1" + s, "pool2" + s, 500, lr.get("ip1", 1), pn("ip1"))
            + relu("relu1" + s, "ip1" + s)
            + ip(last + s, "ip1" + s, num_output, lr.get(last, 1), pn(last)))


def loss_and_accuracy(scores="ip2", label="label"):
    return f"""layer {{
  name: "loss"
  type: "SoftmaxWithLoss"
  bottom: "{scores}"
  bottom: "{label}"
  top: "loss"
}}
layer {{
  name: "accuracy"
  type: "Accuracy"
  bottom: "{scores}"
  bottom: "{label}"
  top: "accuracy"
  include {{ phase: TEST }}
}}
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def write_solver(path, net, base_lr=0.01, momentum=0.9, weight_decay=5e-4, lr_policy="inv",
                 gamma=0.0001, power=0.75, stepsize=None, test_iter=None, test_interval=None,
                 max_iter=10000, seed=1, extra=""):
    """A solver prototxt (Caffe's LeNet settings by default). ``net`` should be absolute:
    caffelite, like Caffe, resolves it from the current directory."""
    lines = [f'net: "{os.path.abspath(net)}"',
             f"base_lr: {base_lr}", f"momentum: {momentum}", f"weight_decay: {weight_decay}",
             f'lr_policy: "{lr_policy}"', f"gamma: {gamma}", f"power: {power}",
             f"max_iter: {max_iter}", "display: 0", f"random_seed: {seed}",
             "solver_mode: CPU"]
    if stepsize:
        lines.append(f"stepsize: {stepsize}")
    if test_iter:
        lines += [f"test_iter: {test_iter}", f"test_interval: {test_interval or max_iter}"]
    return write(path, "\n".join(lines) + "\n" + extra)


# -- training ---------------------------------------------------------------------------------

def train_lenet(out_dir, iters, batch_size=64, n_train=None, seed=1):
    """Train LeNet on MNIST from Python for ``iters`` SGD steps; return the solver.

    The train net reads MemoryData, fed with the (shuffled) training images by
    ``solver.net.set_input_arrays``: pycaffe's way to train from NumPy arrays. Its layer
    names are those of models/lenet/deploy.prototxt, so the weights load there."""
    caffe.set_mode_cpu()
    net_path = write(os.path.join(out_dir, "lenet_train.prototxt"),
                     'name: "LeNet"\n' + memory_data_layer(batch_size)
                     + lenet_body() + loss_and_accuracy())
    solver = caffe.get_solver(write_solver(os.path.join(out_dir, "lenet_solver.prototxt"),
                                           net_path, max_iter=iters, seed=seed))
    x, y = load_mnist("train")
    order = np.random.default_rng(seed).permutation(len(x))[:n_train]
    solver.net.set_input_arrays(*trim(x[order], y[order], batch_size))
    solver.step(iters)
    print(f"  training loss after {iters} iterations: "
          f"{float(solver.net.blobs['loss'].data):.4f}")
    return solver


# -- pictures ---------------------------------------------------------------------------------

def vis_square(data, padsize=1, padval=1.0):
    """Tile (n, h, w) arrays into a grid image about as wide as tall, each normalised to
    [0, 1] on its own so that weak filters stay visible (after the grid helper of Caffe's
    classification tutorial). Padding between tiles is white."""
    data = np.asarray(data, dtype=np.float64)
    flat = data.reshape(len(data), -1)
    lo, hi = flat.min(axis=1)[:, None, None], flat.max(axis=1)[:, None, None]
    data = (data - lo) / np.where(hi > lo, hi - lo, 1.0)
    n = len(data)
    cols = int(np.ceil(np.sqrt(n)))
    # a full last row when a slightly wider grid allows it (50 maps: 10 × 5, not 8 × 7)
    cols = next((c for c in range(cols, int(1.5 * cols) + 1) if n % c == 0), cols)
    rows = int(np.ceil(n / cols))
    padding = ((0, rows * cols - len(data)), (0, padsize), (0, padsize))
    data = np.pad(data, padding, mode="constant", constant_values=padval)
    h, w = data.shape[1:]
    grid = data.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    return grid[:-padsize, :-padsize] if padsize else grid


def save_grid(path, data, title, cmap="gray", width=5.0):
    """Write vis_square(data) to a PNG with a title."""
    plt = pyplot()
    grid = vis_square(data)
    fig, ax = plt.subplots(figsize=(width, width * grid.shape[0] / grid.shape[1] + 0.5))
    ax.imshow(grid, cmap=cmap, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
