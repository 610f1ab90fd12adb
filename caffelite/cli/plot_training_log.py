"""``caffelite plot_training_log LOGFILE OUT.png``: loss and accuracy curves of a training log.

The log (caffelite's or Caffe's) is read by parse_log. Training loss (the ``Train net
output`` values whose name has "loss" in it, or else the smoothed ``Iteration N, loss = X``
of the display lines) and test losses go on the left axis against iterations; the other
test outputs (accuracy, ...) and non-loss training outputs go on a right axis. Drawn with
matplotlib's Agg canvas (no display needed, pyplot's global state untouched); the file type
follows OUT's extension (png, pdf, svg, ...). matplotlib comes with the ``plot`` extra.
"""
import math
import os

from ..errors import CaffeliteError
from ..log import logger
from .flags import new_parser
from .main import command
from .parse_log import parse_log, smoothed_loss

_KEYS = ("NumIters", "Seconds", "LearningRate")


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise CaffeliteError("plot_training_log needs matplotlib: "
                             "pip install 'caffelite[plot]'") from None
    return Figure, FigureCanvasAgg


def _columns(rows):
    names = []
    for row in rows:
        for k in row:
            if k not in _KEYS and k not in names:
                names.append(k)
    return names


def _series(rows, name):
    pts = [(row["NumIters"], row[name]) for row in rows
           if name in row and not math.isnan(row[name])]
    return [p[0] for p in pts], [p[1] for p in pts]


def curves(log_path):
    """{'left': [(label, xs, ys, style)], 'right': [...]} from a log."""
    train, test = parse_log(log_path)
    left, right = [], []
    train_names, test_names = _columns(train), _columns(test)
    train_losses = [n for n in train_names if "loss" in n.lower()]
    if train_losses:
        for n in train_losses:
            left.append((f"train {n}", *_series(train, n), "train"))
    else:
        pts = [(i, v) for i, v in smoothed_loss(log_path) if not math.isnan(v)]
        if pts:
            left.append(("train loss", [p[0] for p in pts], [p[1] for p in pts], "train"))
    for n in test_names:
        (left if "loss" in n.lower() else right).append((f"test {n}", *_series(test, n), "test"))
    for n in train_names:
        if n not in train_losses:
            right.append((f"train {n}", *_series(train, n), "train"))
    return {"left": [c for c in left if c[1]], "right": [c for c in right if c[1]]}


def plot_training_log(log_path, out_path, title=None):
    """Draw the curves of ``log_path`` into ``out_path``; returns the curve labels drawn."""
    Figure, FigureCanvasAgg = _matplotlib()
    data = curves(log_path)
    if not data["left"] and not data["right"]:
        raise CaffeliteError(f"plot_training_log: no training or test outputs found in "
                             f"'{log_path}' (expected Caffe's 'Iteration N, loss = X' and "
                             f"'Train/Test net output #k: name = v' lines)")
    fig = Figure(figsize=(9, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = iter(["tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:brown",
                    "tab:pink"] * 8)
    right_colours = iter(["tab:green", "tab:olive", "tab:cyan", "tab:gray"] * 8)
    handles = []
    for label, xs, ys, kind in data["left"]:
        style = dict(linewidth=1.2, alpha=0.9) if kind == "train" else \
            dict(linewidth=2, marker="o", markersize=4)
        handles += ax.plot(xs, ys, label=label, color=next(colours), **style)
    ax.set_xlabel("Iterations")
    ax.set_ylabel("Loss")
    ax.grid(True, alpha=0.3)
    if data["right"]:
        ax2 = ax.twinx() if data["left"] else ax
        for label, xs, ys, kind in data["right"]:
            style = dict(linewidth=2, marker="s", markersize=4, linestyle="--")
            if kind == "train":
                style.update(marker=None, linestyle=":")
            handles += ax2.plot(xs, ys, label=label, color=next(right_colours), **style)
        names = [c[0] for c in data["right"]]
        ax2.set_ylabel("Accuracy" if all("acc" in n.lower() for n in names) else "Test output")
    # below the axes, so that no curve is hidden behind it
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.11),
              ncol=min(len(handles), 4), frameon=False)
    fig.suptitle(title or f"Training log: {os.path.basename(log_path)}")
    fig.tight_layout()
    try:
        fig.savefig(out_path, dpi=100)
    except (OSError, ValueError) as e:
        raise CaffeliteError(f"plot_training_log: cannot write '{out_path}' ({e})") from None
    return [h.get_label() for h in handles]


@command("plot_training_log", "plot the loss and accuracy curves of a training log")
def plot_training_log_command(argv):
    parser = new_parser("caffelite plot_training_log",
                        "Plot training loss, test loss and test accuracy against iterations "
                        "from a Caffe or caffelite training log (needs matplotlib: pip "
                        "install 'caffelite[plot]').")
    parser.add_argument("logfile_path", metavar="LOGFILE")
    parser.add_argument("output", metavar="OUT.png")
    parser.add_argument("--title", default=None, help="the figure's title")
    args = parser.parse_args(argv)
    labels = plot_training_log(args.logfile_path, args.output, args.title)
    logger.info("Plotted %s to %s", ", ".join(labels), args.output)
    return 0
