#!/usr/bin/env bash
# One short run of every GPU check gandiag has, printed in order (about 5 minutes on an
# H100). Run it from the repository root on any machine with a GPU:
#
#     bash benchmarks/gpu_check.sh            # everything, output also in gpu_check.log
#     GPU_CHECK_QUICK=1 bash benchmarks/gpu_check.sh   # smoke run of the benchmarks
#
# 1. the CUDA tests: sync-free steps under torch.cuda.set_sync_debug_mode("error"), a
#    captured CUDA-graph run recording what the eager run records, DDP-free hooks on CUDA;
# 2. benchmarks/step_overhead.py: eager, the usual logging, gandiag eager and captured,
#    fp32 and bf16 + channels_last, DCGAN-64 batch 128 and the toy MLP batch 512;
# 3. benchmarks/hook_overhead.py on DCGAN-64 (target <= 1.03);
# 4. benchmarks/metrics_speed.py (FID's square root, target >= 100x over scipy's sqrtm).
# Needs torch with CUDA, numpy, scipy and pytest; gandiag runs from this checkout.
set -u -o pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="${OUT:-.}/gpu_check.log"
QUICK=()
[ -n "${GPU_CHECK_QUICK:-}" ] && QUICK=(--quick)
status=0
section() { echo; echo "=== $* ($(date -u +%H:%M:%S)) ==="; }
{
  section "device"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

  section "CUDA tests"
  timeout 900 python -m pytest -q -p no:cacheprovider -rs \
      tests/hooks/test_cuda.py tests/hooks/test_buffer.py tests/train/test_cuda.py \
      tests/train/test_capture.py || status=1

  section "step overhead"
  timeout 900 python benchmarks/step_overhead.py --device cuda "${QUICK[@]}" || status=1

  section "hook overhead, DCGAN-64 batch 128"
  timeout 600 python benchmarks/hook_overhead.py --device cuda --cases dcgan64 "${QUICK[@]}" || status=1

  section "metrics speed"
  timeout 600 python benchmarks/metrics_speed.py --device cuda "${QUICK[@]}" || status=1

  section "done: exit status $status (1: a test failed or a script crashed; targets are in the tables)"
  exit $status
} 2>&1 | tee "$LOG"   # with pipefail the script exits with the group's status
