"""``caffelite upgrade_net_proto_text|upgrade_net_proto_binary|upgrade_solver_proto_text``."""
from google.protobuf import text_format

from ..errors import CaffeliteError
from ..formats.prototxt import read_binary, read_prototxt
from ..formats.solverfile import upgrade_solver
from ..formats.upgrade import upgrade_net
from ..log import logger
from .flags import new_parser
from .main import command


def _io_args(name, argv):
    parser = new_parser(f"caffelite {name}", "upgrade a Caffe file to the current format")
    parser.add_argument("input")
    parser.add_argument("output")
    return parser.parse_args(argv)


def _read(reader, path, message, what):
    """The parsed file, or None after Caffe's "Failed to parse ..." error line (its tools
    then exit with status 2)."""
    try:
        return reader(path, message)
    except CaffeliteError as e:
        logger.error("Failed to parse input %s file as %s: %s (%s)", what,
                     type(message).__name__, path, e)
        return None


def _upgrade_net_file(param, path):
    legacy = len(param.layers) > 0 or len(param.input) > 0
    upgrade_net(param, path)
    if not legacy:
        logger.error("File already in latest proto format: %s", path)
    return param


@command("upgrade_net_proto_text", "upgrade a V0/V1 net prototxt to the current format")
def upgrade_net_text(argv):
    from ..proto import caffe_pb2
    args = _io_args("upgrade_net_proto_text", argv)
    param = _read(read_prototxt, args.input, caffe_pb2.NetParameter(), "text")
    if param is None:
        return 2
    param = _upgrade_net_file(param, args.input)
    with open(args.output, "w") as f:
        f.write(text_format.MessageToString(param))
    logger.info("Wrote upgraded NetParameter text proto to %s", args.output)
    return 0


@command("upgrade_net_proto_binary", "upgrade a V0/V1 binary net (caffemodel) to the current "
                                     "format")
def upgrade_net_binary(argv):
    from ..proto import caffe_pb2
    args = _io_args("upgrade_net_proto_binary", argv)
    param = _read(read_binary, args.input, caffe_pb2.NetParameter(), "binary")
    if param is None:
        return 2
    param = _upgrade_net_file(param, args.input)
    with open(args.output, "wb") as f:
        f.write(param.SerializeToString())
    logger.info("Wrote upgraded NetParameter binary proto to %s", args.output)
    return 0


@command("upgrade_solver_proto_text", "upgrade a solver prototxt (solver_type -> type)")
def upgrade_solver_text(argv):
    from ..proto import caffe_pb2
    args = _io_args("upgrade_solver_proto_text", argv)
    param = _read(read_prototxt, args.input, caffe_pb2.SolverParameter(), "text")
    if param is None:
        return 2
    if not upgrade_solver(param, args.input):
        logger.error("File already in latest proto format: %s", args.input)
    with open(args.output, "w") as f:
        f.write(text_format.MessageToString(param))
    logger.info("Wrote upgraded SolverParameter text proto to %s", args.output)
    return 0
