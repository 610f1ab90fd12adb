"""``caffelite device_query --gpu N``: the CUDA properties of a GPU (needs CuPy)."""
from .. import backend
from ..errors import CaffeliteError
from ..log import logger
from .flags import new_parser
from .main import command


@command("device_query", "show the properties of a GPU")
def device_query(argv):
    parser = new_parser("caffelite device_query", "show the properties of a GPU")
    parser.add_argument("--gpu", default="0")
    args = parser.parse_args(argv)
    if not backend.gpu_available():
        raise CaffeliteError("device_query: no CUDA device is usable (CuPy with a GPU is "
                             "needed: pip install 'caffelite[gpu]')")
    import cupy
    ids = range(cupy.cuda.runtime.getDeviceCount()) if args.gpu == "all" \
        else [int(args.gpu.split(",")[0])]
    for i in ids:
        p = cupy.cuda.runtime.getDeviceProperties(i)
        logger.info("Querying GPUs %d", i)
        logger.info("Device id:                     %d", i)
        logger.info("Major revision number:         %d", p["major"])
        logger.info("Minor revision number:         %d", p["minor"])
        logger.info("Name:                          %s", p["name"].decode())
        logger.info("Total global memory:           %d", p["totalGlobalMem"])
        logger.info("Total shared memory per block: %d", p["sharedMemPerBlock"])
        logger.info("Warp size:                     %d", p["warpSize"])
        logger.info("Maximum threads per block:     %d", p["maxThreadsPerBlock"])
        logger.info("Clock rate:                    %d", p["clockRate"])
        logger.info("Number of multiprocessors:     %d", p["multiProcessorCount"])
