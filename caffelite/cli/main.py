"""``caffelite <command> [flags]``: the same commands and flags as Caffe's ``caffe`` tool."""
import sys

from .. import __version__
from ..errors import CaffeliteError
from ..log import init_log, logger
from . import glog_flags
from .flags import normalise

COMMANDS = {}


def command(name, help_text):
    def decorate(fn):
        COMMANDS[name] = (fn, help_text)
        return fn
    return decorate


def usage():
    lines = ["usage: caffelite <command> [flags]", "", "commands:"]
    for name, (_, help_text) in sorted(COMMANDS.items()):
        lines.append(f"  {name:26s}{help_text}")
    lines.append("")
    lines.append("Run 'caffelite <command> --help' for the flags of a command.")
    return "\n".join(lines)


def main(argv=None):
    from . import convert_mnist, device_query, time_cmd, train, upgrade  # noqa: F401
    from . import download_model, draw_net  # noqa: F401
    from . import (compute_image_mean, convert_imageset, extract_features,  # noqa: F401
                   parse_log, plot_training_log)
    argv = list(sys.argv[1:] if argv is None else argv)
    # gflags takes flags anywhere: `caffe -solver s.prototxt train` runs train
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version",
                                                            "-version"):
        k = next((i for i, a in enumerate(argv) if a in COMMANDS), None)
        if k is not None:
            argv = [argv[k]] + argv[:k] + argv[k + 1:]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0                      # as Caffe, which shows its usage and exits 0
    if argv[0] in ("--version", "-version"):
        print(f"caffelite version {__version__}")
        return 0
    name, rest = argv[0], normalise(argv[1:])
    if name not in COMMANDS:
        print(f"caffelite: unknown command '{name}'\n\n{usage()}", file=sys.stderr)
        return 1
    init_log()
    try:
        rest, settings = glog_flags.split(rest)
        glog_flags.apply(settings)
        return COMMANDS[name][0](rest) or 0
    except CaffeliteError as e:
        logger.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
