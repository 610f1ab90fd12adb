#!/usr/bin/env bash
# The prepared GPU check: on a machine with a CUDA GPU, with nothing installed from the
# network, run the `gpu` tests (CuPy vs NumPy parity for every fixture net, LeNet training
# on the GPU) and the GPU benchmarks (caffelite on CuPy vs PyTorch CUDA), and print one
# table. Budget: under 8 minutes (tests 4, benchmarks 3, with timeouts).
#
#   bash benchmarks/gpu_check.sh            # from the repository root or anywhere
#
# Exit status: 0 when the tests pass and the benchmark table was printed.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONDONTWRITEBYTECODE=1

echo "== environment"
"$PY" - <<'PYEOF'
import importlib, platform
print("python", platform.python_version())
for mod in ("numpy", "cupy", "torch"):
    try:
        m = importlib.import_module(mod)
        print(mod, getattr(m, "__version__", "?"))
    except Exception as e:  # reported, the checks below decide what can run
        print(mod, "NOT AVAILABLE:", type(e).__name__, e)
try:
    import cupy
    n = cupy.cuda.runtime.getDeviceCount()
    for i in range(n):
        p = cupy.cuda.runtime.getDeviceProperties(i)
        print(f"device {i}: {p['name'].decode()}, {p['totalGlobalMem'] / 2**30:.0f} GiB")
except Exception as e:
    print("no CUDA device through CuPy:", e)
PYEOF

if ! "$PY" -c "import cupy, sys; sys.exit(cupy.cuda.runtime.getDeviceCount() < 1)" 2>/dev/null; then
    echo "CuPy with a CUDA device is required for the GPU check (pip install 'caffelite[gpu]')."
    exit 2
fi

status=0
echo
echo "== gpu tests (pytest -m gpu)"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu_parity.py \
    -x --maxfail=5 2>&1 | tail -25
test_status=${PIPESTATUS[0]}
[ "$test_status" -eq 0 ] || status=1

echo
echo "== gpu benchmarks (caffelite on CuPy vs PyTorch CUDA)"
timeout 200 "$PY" benchmarks/run.py --gpu --reps 5 || status=1
exit $status
