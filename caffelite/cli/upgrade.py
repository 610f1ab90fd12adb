"""``caffelite upgrade_net_proto_text|upgrade_net_proto_binary|upgrade_solver_proto_text``."""
from google.protobuf import text_format

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
    param = _upgrade_net_file(read_prototxt(args.input, caffe_pb2.NetParameter()), args.input)
    with open(args.output, "w") as f:
        f.write(text_format.MessageToString(param))
    logger.info("Wrote upgraded NetParameter text proto to %s", args.output)
    return 0


@command("upgrade_net_proto_binary", "upgrade a V0/V1 binary net (caffemodel) to the current "
                                     "format")
def upgrade_net_binary(argv):
    from ..proto import caffe_pb2
    args = _io_args("upgrade_net_proto_binary", argv)
    param = _upgrade_net_file(read_binary(args.input, caffe_pb2.NetParameter()), args.input)
    with open(args.output, "wb") as f:
        f.write(param.SerializeToString())
    logger.info("Wrote upgraded NetParameter binary proto to %s", args.output)
    return 0


@command("upgrade_solver_proto_text", "upgrade a solver prototxt (solver_type -> type)")
def upgrade_solver_text(argv):
    from ..proto import caffe_pb2
    args = _io_args("upgrade_solver_proto_text", argv)
    param = read_prototxt(args.input, caffe_pb2.SolverParameter())
    if not upgrade_solver(param, args.input):
        logger.error("File already in latest proto format: %s", args.input)
    with open(args.output, "w") as f:
        f.write(text_format.MessageToString(param))
    logger.info("Wrote upgraded SolverParameter text proto to %s", args.output)
    return 0
