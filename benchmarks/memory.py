"""Peak memory of CaffeNet training (SGD with momentum) at a given batch, in a fresh process.

Prints one JSON line: the RSS after the imports (the interpreter's baseline), the peak RSS
while training (the kernel's high-water mark, reset after the net is built so the one-off
temporaries of construction are reported apart), the overall peak, and the
bytes of the net's blobs (data + diff), parameters (data + diff) and solver history.
"""
import argparse
import gc
import json
import os
import resource
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import workloads as W  # noqa: E402


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    import caffelite  # noqa: F401
    import caffelite.layer_types  # noqa: F401
    gc.collect()
    baseline = _status("VmRSS")
    wl = [w for w in W.workloads(quick=True) if w.name == "caffenet_fwdbwd"][0]
    solver = W.lenet_solver(wl, net_param=W.caffenet_param(args.batch, train=True))
    gc.collect()
    built = _status("VmRSS")
    reset = _reset_peak()
    for _ in range(args.steps):
        solver.step(1)
    peak_train = _status("VmHWM") if reset else None
    peak_all = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    act, par, hist = W.blob_bytes(solver.net, solver.history)
    peak = peak_train if peak_train is not None else peak_all
    print(json.dumps({"baseline": baseline, "after_build": built, "peak": peak,
                      "peak_including_construction": peak_all,
                      "peak_above_baseline": peak - baseline, "blobs": act, "params": par,
                      "history": hist, "peak_reset": reset}))


if __name__ == "__main__":
    main()
