#!/usr/bin/env bash
# One prepared GPU session: srbvae settings side by side on one GPU (the digits
# and faces-synth presets at full length), the test suite with --device cuda
# meanwhile, the CLI's batch throughput on CUDA after them, then the runs
# (release checkpoints, metrics, sample grids; no resume states) packed into
# $OUT for evaluation elsewhere. The steps/s in each run's metrics.jsonl is the
# CUDA training speed with all runs sharing the GPU.
# Usage (repository root, on the GPU machine):
#   bash benchmarks/gpu_sweep.sh ["name|train.fit options" ...]
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT" runs-gpu
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-}:$PWD HF_HUB_OFFLINE=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

TRAIN_LIMIT=${TRAIN_LIMIT:-470}
COMMON="--device cuda --threads 2 --no-progress --sample-every 2000 --save-every 1000"
# Runs as "name|train.fit options" arguments; without any, the first sweep's runs.
RUNS=("$@")
if [ ${#RUNS[@]} -eq 0 ]; then
  RUNS=(
    "digits-n0|--preset digits --neutral-weight 0"
    "digits-n100|--preset digits --neutral-weight 100"
    "digits-n1000|--preset digits --neutral-weight 1000"
    "digits-n3000|--preset digits --neutral-weight 3000"
    "faces-synth-n0|--preset faces-synth --neutral-weight 0"
    "faces-synth-n1000|--preset faces-synth --neutral-weight 1000"
  )
fi
for spec in "${RUNS[@]}"; do
  name=${spec%%|*}; opts=${spec#*|}
  timeout "$TRAIN_LIMIT" python3 -m train.fit $COMMON $opts --run-dir runs-gpu/$name > runs-gpu/$name.log 2>&1 &
done
# test_push needs huggingface_hub's own HTTP client, which a GPU image may lack.
timeout "$TRAIN_LIMIT" python3 -m pytest -q -p no:cacheprovider --device cuda \
  --ignore=tests/test_push.py ${PYTEST_ARGS:-} > "$OUT/pytest-cuda.log" 2>&1
echo "pytest --device cuda: $(tail -n 1 "$OUT/pytest-cuda.log")"
wait
# CLI batch throughput on the GPU next to the model alone there (issue 3).
timeout 150 python3 benchmarks/cli_speed.py --files 0 --repeats 2 --device cuda > "$OUT/cli-speed-cuda.log" 2>&1
echo "cli_speed --device cuda: $(tail -n 2 "$OUT/cli-speed-cuda.log")"
for spec in "${RUNS[@]}"; do
  name=${spec%%|*}
  echo "$name: $(tail -n 1 runs-gpu/$name/metrics.jsonl | cut -c1-100)"
  tail -n 1 runs-gpu/$name.log
done
tar czf "$OUT/runs-gpu.tgz" --exclude=state.pt runs-gpu
ls -la "$OUT"
