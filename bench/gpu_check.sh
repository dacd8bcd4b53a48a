#!/usr/bin/env bash
# One GPU check in one call (about 5 minutes on an H100/H200), results to $OUT (or ./gpu_check):
#   1. the XMem reference fixtures on CUDA (float32, atol as in the tests);
#   2. xmem_bench float32/bfloat16 at B=1/8 for 144×256 and 480×854, and the stage table;
#   3. a training step of MTP and CoverNet (500×500 rasters, ResNet-50: the devkit's sizes);
#   4. a short `xmem-traj train --accelerator gpu` on a small synthetic set, and a check that its
#      XMem features were extracted on CUDA (the feature cache's manifests record the device).
# Usage (from the repository root, with .venv built by `make setup`; on a CUDA machine first
#   `make setup TORCH='torch==2.13.0'` so that the CUDA wheel is installed):
#   bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check}"
mkdir -p "$OUT"
PY="${PY:-.venv/bin/python}"
export XMEM_TRAJ_CACHE="$OUT/cache"
{
  echo "== device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  echo "== fixtures on CUDA"
  XMEM_TEST_DEVICE=cuda timeout 120 "$PY" -m pytest -q tests/test_xmem_fixture.py -k test_reference_fixture 2>&1 | tail -3
  echo "== xmem_bench"
  timeout 150 "$PY" bench/xmem_bench.py --device cuda --threads 0 --frames 6 --json "$OUT/xmem_bench.json"
  timeout 60 "$PY" bench/xmem_bench.py --device cuda --threads 0 --stages --json "$OUT/xmem_stages.json"
  echo "== a training step of each devkit peer (MTP, CoverNet) at the devkit's own sizes"
  timeout 120 "$PY" bench/peers_bench.py --device cuda --resolution 0.1 --backbone resnet50 \
      --targets 10 --threads 0 --epoch-targets 32000
  echo "== short train on the GPU"
  timeout 240 .venv/bin/xmem-traj train --accelerator gpu --synth-train-scenes 4 --synth-train-val-scenes 0 --synth-val-scenes 2 --epochs 3 --seeds 1 \
      --run-dir "$OUT/runs" --name gpu --no-progress
} 2>&1 | tee "$OUT/gpu_check.log"
"$PY" - "$OUT" <<'PYEOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
summary = {p.stem: json.loads(p.read_text()) for p in out.glob("xmem_*.json")}
run = out / "runs" / "gpu" / "eval.json"
summary["train_eval"] = json.loads(run.read_text()) if run.exists() else None
devices = [json.loads(m.read_text()).get("device") for m in (out / "cache").glob("features/*/manifest.json")]
summary["feature_devices"] = devices
(out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
print("wrote", out / "gpu_check.json")
assert devices and all(d and d.startswith("cuda") for d in devices), f"features extracted on {devices}"
print("XMem features were extracted on", sorted(set(devices)))
PYEOF
