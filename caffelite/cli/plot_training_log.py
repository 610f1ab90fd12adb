"""``caffelite plot_training_log LOGFILE OUT.png``: loss and accuracy curves of a training log;
``caffelite plot_training_log CHART_TYPE OUT.png LOG [LOG ...]``: Caffe's
plot_training_log.py.example interface, one chart of several logs:

    0 Test accuracy vs. Iters        1 Test accuracy vs. Seconds
    2 Test loss vs. Iters            3 Test loss vs. Seconds
    4 Train learning rate vs. Iters  5 Train learning rate vs. Seconds
    6 Train loss vs. Iters           7 Train loss vs. Seconds

(test accuracy and loss are the ``Test net output #0`` and ``#1`` values, train loss the
``Iteration N, loss = X`` display values, as Caffe's parse_log.sh picks them; each log is a
line named after its file).

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
from .parse_log import display_points, parse_log, smoothed_loss

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


CHART_TYPES = {0: ("Test accuracy", "Iters"), 1: ("Test accuracy", "Seconds"),
               2: ("Test loss", "Iters"), 3: ("Test loss", "Seconds"),
               4: ("Train learning rate", "Iters"), 5: ("Train learning rate", "Seconds"),
               6: ("Train loss", "Iters"), 7: ("Train loss", "Seconds")}


def chart_points(log_path, chart_type):
    """(xs, ys) of one log for one of Caffe's chart types."""
    what, axis = CHART_TYPES[chart_type]
    col = 0 if axis == "Iters" else 1
    if what.startswith("Test"):
        _, test = parse_log(log_path)
        names = _columns(test)
        k = 0 if what == "Test accuracy" else 1
        if len(names) <= k:
            return [], []
        pts = [((row["NumIters"], row["Seconds"])[col], row[names[k]]) for row in test
               if names[k] in row]
    else:
        series = display_points(log_path)["lr" if "rate" in what else "loss"]
        pts = [(p[col], p[2]) for p in series]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_chart(chart_type, out_path, log_paths):
    """Caffe's plot_training_log.py.example: one chart type, one line per log."""
    Figure, FigureCanvasAgg = _matplotlib()
    what, axis = CHART_TYPES[chart_type]
    fig = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    for path in log_paths:
        xs, ys = chart_points(path, chart_type)
        if xs:
            ax.plot(xs, ys, label=os.path.basename(path), marker="o", markersize=3,
                    linewidth=1.2)
            drawn += 1
    if not drawn:
        raise CaffeliteError(f"plot_training_log: no '{what}' values in "
                             f"{', '.join(log_paths)}")
    ax.set_title(f"{what} vs. {axis}")
    ax.set_xlabel(axis)
    ax.set_ylabel(what)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right" if "accuracy" in what else "upper right", ncol=1)
    fig.tight_layout()
    try:
        fig.savefig(out_path, dpi=100)
    except (OSError, ValueError) as e:
        raise CaffeliteError(f"plot_training_log: cannot write '{out_path}' ({e})") from None
    return drawn


@command("plot_training_log", "plot the loss and accuracy curves of a training log")
def plot_training_log_command(argv):
    positional = [a for a in argv if not a.startswith("-")]
    if positional and positional[0].isdigit():
        return _caffe_interface(argv)
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


def _caffe_interface(argv):
    parser = new_parser("caffelite plot_training_log",
                        "Caffe's interface: one chart type for one or more logs.")
    parser.add_argument("chart_type", type=int, help="0-7, see the module help")
    parser.add_argument("output", metavar="OUT.png")
    parser.add_argument("logs", nargs="+", metavar="LOG")
    args = parser.parse_args(argv)
    if args.chart_type not in CHART_TYPES:
        raise CaffeliteError(f"plot_training_log: chart type {args.chart_type} is not one of "
                             f"0-7: " + "; ".join(f"{k} {w} vs. {a}"
                                                  for k, (w, a) in CHART_TYPES.items()))
    n = plot_chart(args.chart_type, args.output, args.logs)
    what, axis = CHART_TYPES[args.chart_type]
    logger.info("Plotted %s vs. %s of %d log(s) to %s", what, axis, n, args.output)
    return 0
