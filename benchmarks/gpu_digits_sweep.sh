#!/usr/bin/env bash
# One prepared GPU session: CUDA training speed, then the digits preset with
# several srbvae settings side by side on one GPU (2,000 steps each), the
# release checkpoints packed into $OUT (or ./gpu-out) for evaluation elsewhere.
# Usage (repository root, on the GPU machine): bash benchmarks/gpu_digits_sweep.sh
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT" runs-gpu
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-}:$PWD
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

COMMON="--preset digits --device cuda --threads 2 --steps 2000 --no-progress --sample-every 1000 --save-every 500"
# name|options
RUNS=(
  "srbvae-swap|--objective srbvae"
  "srbvae-swap-mmd300|--objective srbvae --mmd-weight 300"
  "rbvae|--objective rbvae"
  "srbvae-paper|--objective srbvae --swap-weight 0"
  "srbvae-swap-adv100|--objective srbvae --adversarial-weight 100"
)
for spec in "${RUNS[@]}"; do
  name=${spec%%|*}; opts=${spec#*|}
  timeout 300 python3 -m train.fit $COMMON $opts --run-dir runs-gpu/$name > runs-gpu/$name.log 2>&1 &
done
wait
for spec in "${RUNS[@]}"; do
  name=${spec%%|*}
  echo "$name: $(tail -n 1 runs-gpu/$name/metrics.jsonl | cut -c1-160)"
  tail -n 2 runs-gpu/$name.log
done
tar czf "$OUT/runs-gpu.tgz" --exclude=state.pt runs-gpu
ls -la "$OUT"
