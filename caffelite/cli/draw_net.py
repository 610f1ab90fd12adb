"""``caffelite draw_net NET OUT.(png|svg|...)``: pycaffe's python/draw_net.py."""
from ..errors import CaffeliteError
from ..log import logger
from .flags import new_parser
from .main import command

PHASES = {"TRAIN": 0, "TEST": 1, "ALL": None}


@command("draw_net", "draw a net's layers and blobs to PNG, SVG or DOT (draw_net.py)")
def draw_net_cmd(argv):
    from .. import draw
    parser = new_parser("caffelite draw_net",
                        "Draw a network graph: layers (boxes) and blobs (octagons). The "
                        "output format comes from the file extension: "
                        + ", ".join(sorted(set(draw.RASTER_FORMATS) | set(draw.TEXT_FORMATS))))
    parser.add_argument("input_net_proto_file", help="the net definition (prototxt)")
    parser.add_argument("output_image_file", help="where to write the picture")
    parser.add_argument("--rankdir", default="LR", type=str.upper, choices=draw.RANKDIRS,
                        help="direction of the graph: LR (left to right, the default), TB "
                             "(top to bottom), BT or RL")
    parser.add_argument("--phase", default="ALL", type=str.upper, choices=list(PHASES),
                        help="draw only the layers of this phase (ALL: every layer)")
    parser.add_argument("--display_lrm", action="store_true",
                        help="show the lr_mult of learnable layers")
    args = parser.parse_args(argv)
    try:
        draw.draw_net_to_file(args.input_net_proto_file, args.output_image_file,
                              rankdir=args.rankdir, phase=PHASES[args.phase],
                              display_lrm=args.display_lrm)
    except OSError as e:
        raise CaffeliteError(f"draw_net: cannot write {args.output_image_file}: "
                             f"{e.strerror or e}") from None
    logger.info("Drawing net to %s", args.output_image_file)
    return 0
