"""``caffelite device_query -gpu IDS``: the CUDA properties of each listed GPU (needs CuPy),
in the lines Caffe's Caffe::DeviceQuery prints."""
from .. import backend
from ..errors import CaffeliteError
from ..log import logger
from .flags import new_parser
from .main import command
from .time_cmd import gpu_ids


def _yes_no(flag):
    return "Yes" if flag else "No"


def _triple(values):
    return ", ".join(str(v) for v in values)


def query(i):
    import cupy
    p = cupy.cuda.runtime.getDeviceProperties(i)
    name = p["name"].decode() if isinstance(p["name"], bytes) else p["name"]
    rows = [("Device id", i), ("Major revision number", p["major"]),
            ("Minor revision number", p["minor"]), ("Name", name),
            ("Total global memory", p["totalGlobalMem"]),
            ("Total shared memory per block", p["sharedMemPerBlock"]),
            ("Total registers per block", p.get("regsPerBlock", "?")),
            ("Warp size", p["warpSize"]), ("Maximum memory pitch", p.get("memPitch", "?")),
            ("Maximum threads per block", p["maxThreadsPerBlock"]),
            ("Maximum dimension of block", _triple(p.get("maxThreadsDim", ("?",) * 3))),
            ("Maximum dimension of grid", _triple(p.get("maxGridSize", ("?",) * 3))),
            ("Clock rate", p["clockRate"]), ("Total constant memory", p.get("totalConstMem", "?")),
            ("Texture alignment", p.get("textureAlignment", "?")),
            ("Concurrent copy and execution", _yes_no(p.get("deviceOverlap", 0))),
            ("Number of multiprocessors", p["multiProcessorCount"]),
            ("Kernel execution timeout", _yes_no(p.get("kernelExecTimeoutEnabled", 0)))]
    for label, value in rows:
        logger.info("%-31s%s", label + ":", value)


@command("device_query", "show the properties of the GPUs given with -gpu")
def device_query(argv):
    parser = new_parser("caffelite device_query", "show the properties of GPUs")
    parser.add_argument("--gpu", default="", help="comma-separated GPU ids, or 'all'")
    args = parser.parse_args(argv)
    logger.info("Querying GPUs %s", args.gpu)
    if not args.gpu:                 # as Caffe: nothing listed, nothing queried
        return 0
    if not backend.gpu_available():
        raise CaffeliteError("device_query: no CUDA device is usable (CuPy with a GPU is "
                             "needed: pip install 'caffelite[gpu]')")
    for i in gpu_ids(args.gpu):
        query(i)
    return 0
