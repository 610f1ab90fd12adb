"""One command, one table: caffelite against its peers on the workloads of workloads.py.

    python benchmarks/run.py            full run (a few minutes on 2 cores)
    python benchmarks/run.py --quick    fewer repetitions, half-width ResNet-50 only
    python benchmarks/run.py --gpu      caffelite on CuPy against PyTorch CUDA

Every side computes the same workload (same prototxt, weights and inputs); outputs are
compared before anything is timed, and a peer that disagrees is reported, not timed. Each
side gets warm-up runs, then the sides take turns, run after run, and the median is
reported (turns keep a noisy machine from favouring one side). Ratios are peer time /
caffelite time: above 1 means caffelite is faster. Real Caffe is not installable here and is
reported as not available. The machine's float32 matmul GFLOP/s, CaffeNet's per-convolution
GFLOP/s and the peak RSS of CaffeNet training (a subprocess, memory.py) come with the table.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def _threads_from_argv(argv):
    """--threads N must reach the BLAS libraries before NumPy loads them."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


_THREADS = _threads_from_argv(sys.argv[1:])
if _THREADS:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _THREADS

# NumPy's OpenBLAS threads otherwise spin ~0.1 s after each matmul, taking the cores from
# whichever side runs next (PyTorch's turn, or caffelite's own host threads): they must sleep
# at once for the turns to be fair. Set before NumPy loads, as caffelite itself does.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

import workloads as W  # noqa: E402
import peers  # noqa: E402

AGREE_RTOL = 2e-3     # max |a - b| / max |b| for outputs, gradients and updated weights


class Side:
    """A named way to run a workload: ``prepare()`` then ``run()`` (timed), ``result()``."""

    def __init__(self, name, run, sync=None):
        self.name, self.run_fn, self.sync = name, run, sync

    def run(self):
        self.run_fn()
        if self.sync:
            self.sync()


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(), 1e-30)
    return float(np.abs(a - b).max() / scale)


def matmul_gflops(xp, sync, n=2048, reps=5, clock=time.perf_counter):
    a = xp.asarray(np.random.default_rng(0).random((n, n), dtype=np.float32))
    out = xp.empty((n, n), dtype=np.float32)
    xp.matmul(a, a, out=out)
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = clock()
        xp.matmul(a, a, out=out)
        sync()
        best = min(best, clock() - t0)
    return 2.0 * n ** 3 / best / 1e9


CLOCK = time.perf_counter


# Idle threads of the side that just ran keep spinning for a while (libgomp's ~300,000 spins
# in PyTorch, OpenBLAS's ~0.1 s unless told otherwise), taking cores from the side that runs
# next. A side whose runs are shorter than this first does one untimed run of its own in each
# turn, so what is timed is the steady state a training or inference loop sees.
SETTLE_BELOW_S = 0.2
MAX_REPS = 40


def time_sides(sides, warmup, reps):
    """Warm each side up, then alternate turns; {name: [seconds]}."""
    last = {}
    for s in sides:
        for _ in range(warmup):
            t0 = CLOCK()
            s.run()
            last[s.name] = CLOCK() - t0
    times = {s.name: [] for s in sides}
    # short workloads get more turns (about a second of runs per side), so that the
    # median is not at the mercy of a few noisy turns
    longest = max(last.values()) if last else 1.0
    reps = max(reps, min(MAX_REPS, int(1.0 / max(longest, 1e-3))))
    for _ in range(reps):
        for s in sides:
            if last.get(s.name, 0.0) < SETTLE_BELOW_S:
                s.run()
            t0 = CLOCK()
            s.run()
            last[s.name] = CLOCK() - t0
            times[s.name].append(last[s.name])
    return times


# -- caffelite sides ----------------------------------------------------------------------
def caffelite_side(wl, ctx):
    """(Side, net or solver) for workload ``wl``."""
    if wl.kind == "train_step":
        solver = W.lenet_solver(wl)
        return Side("caffelite", lambda: solver.step(1), ctx["sync"]), solver
    net = W.build_net(wl)
    if ctx.get("fold") and wl.kind == "forward":
        from caffelite.transforms import fold_batchnorm, fuse_relu
        net = fuse_relu(fold_batchnorm(net))
    fn = net.forward_backward if wl.kind == "fwdbwd" else net.forward_prefilled
    return Side("caffelite", fn, ctx["sync"]), net


def caffelite_output(obj, wl):
    from caffelite.backend import asnumpy
    net = obj.net if hasattr(obj, "net") else obj
    net.forward_prefilled()
    return asnumpy(net.blobs[wl.output].data).copy()


# -- PyTorch --------------------------------------------------------------------------------
def torch_side(wl, ref_net, ctx):
    """(Side, agreement error) for PyTorch on ``wl``; the check runs before any timing."""
    import torch
    dev = ctx["torch_device"]
    sync = (torch.cuda.synchronize if dev == "cuda" else None)
    inputs = wl.make_inputs()
    if wl.kind == "forward":
        tnet = peers.TorchNet(ref_net, dev)
        tnet.set_inputs(inputs)
        with torch.inference_mode():
            got = tnet.forward()[wl.output].cpu().numpy()
        err = rel_err(got, ctx["ref_output"])

        def run():
            with torch.inference_mode():
                tnet.forward()
        return Side("torch", run, sync), err
    if wl.kind == "fwdbwd":
        err = _check_gradients(wl, dev)
        tnet = peers.TorchNet(ref_net, dev, train=True)
        tnet.set_inputs(inputs)

        def run():
            for p, _, _ in tnet.params:
                p.grad = None
            tnet.forward()[wl.output].backward()
        return Side("torch", run, sync), err
    # LeNet solver step: forward, backward, SGD with momentum and weight decay
    err = _check_solver_step(wl, dev)
    tnet = peers.TorchNet(ref_net, dev, train=True)
    tnet.set_inputs(inputs)
    opt = tnet.optimizer(**W.LENET_SOLVER_TORCH)

    def run():
        opt.zero_grad(set_to_none=True)
        tnet.forward()[wl.output].backward()
        opt.step()
    return Side("torch", run, sync), err


def _check_gradients(wl, dev):
    """caffelite vs torch on the TRAIN net with Dropout as the identity (ratio 0): the loss
    of the net as it is, and the loss and every parameter gradient of the net with its MAX
    pooling turned into AVE. (Through MAX pooling, two float32 implementations that agree
    to 1e-6 still route some gradients to different cells wherever a window's two largest
    values are within rounding of each other; Caffe's MAX backward itself is checked
    against Caffe by the layer tests.)"""
    from caffelite.proto import caffe_pb2
    errs = []
    for ave in (False, True):
        param = wl.net_param()
        for lp in param.layer:
            if lp.type == "Dropout":
                lp.dropout_param.dropout_ratio = 0.0
            if ave and lp.type == "Pooling":
                lp.pooling_param.pool = caffe_pb2.PoolingParameter.AVE
        errs.append(_compare_backward(wl, param, dev, grads=ave))
    return max(errs)


def _compare_backward(wl, param, dev, grads):
    import caffelite as caffe
    from caffelite.backend import asnumpy
    caffe.set_random_seed(0)
    net = caffe.Net(param)
    W.load_inputs(net, wl.make_inputs())
    net.clear_param_diffs()
    loss = net.forward_backward()
    tnet = peers.TorchNet(net, dev, train=True)
    tnet.set_inputs(wl.make_inputs())
    tloss = tnet.forward()[wl.output]
    errs = [rel_err(float(tloss.detach()), loss)]
    if grads:
        tloss.backward()
        blobs = [b for layer in net.layers if layer.type in ("Convolution", "InnerProduct")
                 for b in layer.blobs]
        for (p, _, _), b in zip(tnet.params, blobs):
            errs.append(rel_err(p.grad.cpu().numpy(), asnumpy(b.diff)))
    return max(errs)


def _check_solver_step(wl, dev):
    """Weights after one solver step, caffelite vs torch.optim.SGD."""
    from caffelite.backend import asnumpy
    solver = W.lenet_solver(wl)
    net = solver.net
    tnet = peers.TorchNet(net, dev, train=True)
    tnet.set_inputs(wl.make_inputs())
    opt = tnet.optimizer(**W.LENET_SOLVER_TORCH)
    solver.step(1)
    opt.zero_grad()
    tnet.forward()[wl.output].backward()
    opt.step()
    blobs = [b for layer in net.layers if layer.type in ("Convolution", "InnerProduct")
             for b in layer.blobs]
    return max(rel_err(p.detach().cpu().numpy(), asnumpy(b.data))
               for (p, _, _), b in zip(tnet.params, blobs))


# -- OpenCV ---------------------------------------------------------------------------------
def opencv_side(wl, ref_net, ctx, winograd=True):
    """OpenCV as it loads a model by default, or (``winograd`` False) with its Winograd
    F(6x6, 3x3) path for 3x3 convolutions turned off: the direct convolutions that compute
    what caffelite computes with Caffe's roundings (reported beside the default, to show
    how much of OpenCV's lead comes from Winograd)."""
    cvnet = peers.opencv_net(ref_net, ctx["tmp"], wl.name)
    if not winograd:
        cvnet.enableWinograd(False)
    inputs = wl.make_inputs()
    cvnet.setInput(inputs["data"], "data")
    got = cvnet.forward(wl.output)
    err = rel_err(got, ctx["ref_output"])
    name = "opencv" if winograd else "opencv_direct"
    return Side(name, lambda: cvnet.forward(wl.output)), err


def opencv_direct_side(wl, ref_net, ctx):
    return opencv_side(wl, ref_net, ctx, winograd=False)


PEER_SIDES = {"torch": torch_side, "opencv": opencv_side, "opencv_direct": opencv_direct_side}


# -- CaffeNet per-convolution GFLOP/s ------------------------------------------------------
def conv_layer_rates(net, reps, sync, backward=False):
    """[(layer name, ms forward, GFLOP/s forward, ms backward, GFLOP/s backward)]."""
    rows = []
    for i, layer in enumerate(net.layers):
        if layer.type != "Convolution":
            continue
        bottom, top = net._bottom_vecs[i], net._top_vecs[i]
        G, og, ck, L = layer.sizes
        flops = 2.0 * G * og * ck * L * layer.num
        fwd = []
        for _ in range(reps + 1):
            t0 = CLOCK()
            layer.Forward(bottom, top)
            if sync:
                sync()
            fwd.append(CLOCK() - t0)
        f = statistics.median(fwd[1:])
        b = bflops = None
        if backward:
            down = net._bottom_need_backward[i]
            bflops = flops * (1 + int(any(down)))
            bwd = []
            for _ in range(reps + 1):
                t0 = CLOCK()
                layer.Backward(top, down, bottom)
                if sync:
                    sync()
                bwd.append(CLOCK() - t0)
            b = statistics.median(bwd[1:])
        rows.append((net._layer_names[i], f, flops / f / 1e9,
                     b, (bflops / b / 1e9) if b else None))
    return rows


def memory_report(ctx):
    cmd = [sys.executable, os.path.join(HERE, "memory.py"), "--batch", "32"]
    if ctx["gpu"]:
        return None
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def caffe_threads():
    from caffelite.kernels import parallel
    return parallel.num_threads()


def fmt_ms(t):
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and workloads")
    ap.add_argument("--gpu", action="store_true", help="caffelite on CuPy vs PyTorch CUDA")
    ap.add_argument("--reps", type=int, default=None, help="timed runs per side")
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--no-fold", action="store_true",
                    help="time inference nets as written: no BatchNorm+Scale folding, no "
                         "ReLU fusion")
    ap.add_argument("--json", default="", help="also write the results to this file")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for every side (BLAS, torch, OpenCV); default: all cores")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the process's CPU time instead of the wall clock (for "
                         "single-threaded comparisons on a busy machine)")
    args = ap.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    nthreads = args.threads or os.cpu_count() or 1
    reps = args.reps or (3 if args.quick else 7)
    warmup = 1 if args.quick else 2

    import caffelite as caffe
    ctx = {"gpu": args.gpu, "fold": not args.no_fold, "sync": None, "torch_device": "cpu"}
    if args.gpu:
        import cupy
        caffe.set_mode_gpu()
        ctx["sync"] = cupy.cuda.Device().synchronize
        ctx["torch_device"] = "cuda"
        xp, device = cupy, cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    else:
        xp, device = np, f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    sync = ctx["sync"] or (lambda: None)

    have_torch = peers.have_torch()
    have_cv = peers.have_opencv() and not args.gpu
    have_cv_direct = have_cv and peers.opencv_can_disable_winograd()
    if have_torch:
        import torch
        if args.gpu and not torch.cuda.is_available():
            have_torch = False
        else:
            torch.set_num_threads(nthreads)
            # float32 everywhere, as caffelite and Caffe compute (no TF32 tensor-core math)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
    if have_cv:
        import cv2
        cv2.setNumThreads(nthreads)

    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    peak = matmul_gflops(xp, sync, n=8192 if args.gpu else 2048, clock=CLOCK)
    print(f"# caffelite benchmarks, {datetime.date.today()}, {device}, numpy {np.__version__}"
          + (f", torch {peers.torch_version()}" if have_torch else ", torch not installed")
          + (f", opencv {peers.opencv_version()}" if have_cv else "")
          + f"; {nthreads} thread(s) (caffelite host threads {caffe_threads()}, "
          + f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')})"
          + f"; float32 matmul {peak:.0f} GFLOP/s; median of {reps} runs"
          + (" (CPU time)" if args.cpu_time else ""), flush=True)

    wls = W.workloads(quick=args.quick)
    if args.only:
        keep = set(args.only.split(","))
        wls = [w for w in wls if w.name in keep]
    results = []
    conv_rows = None
    with tempfile.TemporaryDirectory() as tmp:
        ctx["tmp"] = tmp
        for wl in wls:
            side, obj = caffelite_side(wl, ctx)
            net = obj.net if hasattr(obj, "net") else obj
            ref_net = W.build_net(wl) if wl.kind != "train_step" else net
            ctx["ref_output"] = caffelite_output(obj, wl) if wl.kind == "forward" else None
            if wl.kind == "forward" and ctx["fold"]:
                # the folded net must still compute the deploy net's output
                plain = caffelite_output(ref_net, wl)
                folded_err = rel_err(ctx["ref_output"], plain)
                if folded_err > AGREE_RTOL:
                    raise SystemExit(f"{wl.name}: folded net disagrees ({folded_err:.2e})")
            sides, row = [side], {"workload": wl.title, "name": wl.name, "peers": {}}
            for peer in ("torch", "opencv", "opencv_direct"):
                have = {"torch": have_torch, "opencv": have_cv,
                        "opencv_direct": have_cv_direct}[peer]
                if peer.split("_")[0] not in wl.peers:
                    continue
                if not have:
                    row["peers"][peer] = {"status": "not installed"}
                    continue
                try:
                    s, err = PEER_SIDES[peer](wl, ref_net, ctx)
                except Exception as e:             # a peer that cannot run it is reported
                    row["peers"][peer] = {"status": f"failed: {type(e).__name__}: {e}"[:80]}
                    continue
                if err > AGREE_RTOL:
                    row["peers"][peer] = {"status": f"disagrees (rel err {err:.1e})"}
                    continue
                row["peers"][peer] = {"status": "ok", "rel_err": err}
                sides.append(s)
            times = time_sides(sides, warmup, reps)
            row["caffelite"] = statistics.median(times["caffelite"])
            for s in sides[1:]:
                row["peers"][s.name]["time"] = statistics.median(times[s.name])
            results.append(row)
            _print_row(row)
            if wl.name == "caffenet_fwdbwd":
                conv_rows = conv_layer_rates(net, max(2, reps // 2), ctx["sync"], backward=True)
            del side, obj, net, ref_net, sides
    mem = memory_report(ctx)
    _print_table(results, peak, conv_rows, mem, have_torch, have_cv, args.gpu)
    if hasattr(os, "getloadavg"):
        print(f"load average at start {load0[0]:.2f}, at end {os.getloadavg()[0]:.2f} "
              f"(other processes on the machine distort multi-threaded timings)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device, "matmul_gflops": peak, "results": results,
                       "conv": conv_rows, "memory": mem}, f, indent=1)


def _print_row(row):
    parts = [f"{row['name']}: caffelite {fmt_ms(row['caffelite'])}"]
    for p, info in row["peers"].items():
        if "time" in info:
            parts.append(f"{p} {fmt_ms(info['time'])} (x{info['time'] / row['caffelite']:.2f})")
        else:
            parts.append(f"{p} {info['status']}")
    print("  " + ", ".join(parts), flush=True)


def _print_table(results, peak, conv_rows, mem, have_torch, have_cv, gpu):
    torch_name = "PyTorch CUDA" if gpu else "PyTorch CPU"
    print()
    direct = any("opencv_direct" in r["peers"] for r in results)
    cols = ("torch", "opencv") + (("opencv_direct",) if direct else ())
    print(f"| workload | caffelite | Caffe 1.0 | {torch_name} | ratio | OpenCV DNN | ratio |"
          + (" OpenCV, Winograd off | ratio |" if direct else ""))
    print("|---|---|---|---|---|---|---|" + ("---|---|" if direct else ""))
    for r in results:
        cells = [r["workload"], fmt_ms(r["caffelite"]), "not available"]
        for p in cols:
            info = r["peers"].get(p)
            if info is None:
                cells += ["—", "—"]
            elif "time" in info:
                cells += [fmt_ms(info["time"]), f"{info['time'] / r['caffelite']:.2f}"]
            else:
                cells += [info["status"], "—"]
        print("| " + " | ".join(cells) + " |")
    print(f"\nratio = peer time / caffelite time (> 1: caffelite faster). Caffe 1.0 is not "
          f"installable here. Machine float32 matmul: {peak:.0f} GFLOP/s.")
    if conv_rows:
        print("\nCaffeNet batch 32, per convolution (forward; backward = weight + data "
              "gradients):\n")
        print("| layer | forward | GFLOP/s | % of matmul | backward | GFLOP/s | % of matmul |")
        print("|---|---|---|---|---|---|---|")
        for name, f, fr, b, br in conv_rows:
            print(f"| {name} | {fmt_ms(f)} | {fr:.0f} | {100 * fr / peak:.0f}% | "
                  f"{fmt_ms(b)} | {br:.0f} | {100 * br / peak:.0f}% |")
    if mem:
        if "error" in mem:
            print(f"\nmemory: failed ({mem['error']})")
        else:
            tot = mem["blobs"] + mem["params"] + mem["history"]
            print(f"\nCaffeNet training, batch 32 (memory.py): peak RSS above the interpreter "
                  f"baseline {mem['peak_above_baseline'] / 2**20:.0f} MiB; blobs data+diff "
                  f"{mem['blobs'] / 2**20:.0f} MiB + params data+diff "
                  f"{mem['params'] / 2**20:.0f} MiB + SGD history "
                  f"{mem['history'] / 2**20:.0f} MiB = {tot / 2**20:.0f} MiB; ratio "
                  f"{mem['peak_above_baseline'] / tot:.2f} (target <= 1.2). Real Caffe: not "
                  f"available.")


if __name__ == "__main__":
    main()
