"""gflags-style argument parsing: ``-flag value``, ``--flag value`` and ``--flag=value``."""
import argparse


def normalise(argv):
    """Turn gflags' single-dash long flags (``-solver x``) into argparse's ``--solver x``."""
    out = []
    for a in argv:
        # glog's one-letter -v is a long flag too (argparse's -h stays short)
        long_flag = len(a) > 2 or a == "-v"
        if a.startswith("-") and not a.startswith("--") and long_flag and not _number(a):
            a = "-" + a
        out.append(a)
    return out


def _number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def net_flags(parser):
    parser.add_argument("--model", default="", help="the model definition prototxt")
    parser.add_argument("--weights", default="",
                        help="comma-separated caffemodels to initialise from")
    parser.add_argument("--gpu", default="", help="GPU id(s) to use, or 'all'; empty = CPU")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--level", type=int, default=0)
    parser.add_argument("--stage", default=None, help="comma-separated NetState stages")
    parser.add_argument("--phase", default="", help="TRAIN or TEST")


def stages(value):
    # Caffe splits the flag even when it is empty: by default the state has one stage, ""
    return [""] if value is None else value.split(",")


def new_parser(prog, description):
    return argparse.ArgumentParser(prog=prog, description=description)
