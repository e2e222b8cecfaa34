#!/usr/bin/env bash
# One prepared GPU session: the digits preset's training speed alone on the GPU,
# then training runs side by side on it with the test suite (--device cuda)
# meanwhile, then the runs (release checkpoints, metrics, sample grids; no
# resume states) packed into $OUT for evaluation elsewhere. A run still going
# after TRAIN_LIMIT seconds is interrupted (its state saved) and exported at the
# step it reached; its config.json then says how many steps that was.
# Usage (repository root, on the GPU machine):
#   bash benchmarks/gpu_sweep.sh ["name|train.fit options" ...]
# Environment: TRAIN_LIMIT (s, default 420), SOLO_STEPS (default 600; 0 skips
# the solo benchmark), DEVICE (default cuda), CLI_SPEED=1 (also time the CLI's
# batch throughput on the device).
# Time it takes: the solo run (about 25 s), then TRAIN_LIMIT, then up to a minute
# or two to export interrupted runs and pack. The runs are packed once before
# that export too, so a call that runs out of time still brings them back; and
# they live under runs/ (git-ignored), which a warm device machine keeps for the
# next call, where a plain `runs-gpu` folder was deleted with the lost call
# (2026-11-30).
set -u
OUT=${OUT:-gpu-out}
RUNS_DIR=runs/gpu
mkdir -p "$OUT" "$RUNS_DIR"
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-}:$PWD HF_HUB_OFFLINE=1
nvidia-smi -L 2>/dev/null
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"

TRAIN_LIMIT=${TRAIN_LIMIT:-420}
SOLO_STEPS=${SOLO_STEPS:-600}
DEVICE=${DEVICE:-cuda}  # cpu: a dry run of this script anywhere
COMMON="--device $DEVICE --no-progress --sample-every 2000 --save-every 1000"

last_metrics() {  # the last metrics line of a run, shortened
  tail -n 1 "$1/metrics.jsonl" 2>/dev/null | cut -c1-140
}

# The digits preset alone on the GPU: steps/s with nothing else running.
if [ "$SOLO_STEPS" -gt 0 ]; then
  python3 -m train.fit --preset digits $COMMON --threads 2 --steps "$SOLO_STEPS" \
    --run-dir $RUNS_DIR/solo-digits > $RUNS_DIR/solo-digits.log 2>&1
  echo "solo digits preset: $(last_metrics $RUNS_DIR/solo-digits)"
fi

# Runs as "name|train.fit options" arguments; without any, two runs of the first sweep.
RUNS=("$@")
if [ ${#RUNS[@]} -eq 0 ]; then
  RUNS=(
    "digits-n0|--preset digits --neutral-weight 0"
    "digits-n1000|--preset digits --neutral-weight 1000"
  )
fi
for spec in "${RUNS[@]}"; do
  name=${spec%%|*}; opts=${spec#*|}
  # SIGINT: the run saves its state between steps, so it can be exported below.
  timeout -s INT "$TRAIN_LIMIT" python3 -m train.fit $COMMON $opts --run-dir $RUNS_DIR/$name \
    > $RUNS_DIR/$name.log 2>&1 &
done
# test_push needs huggingface_hub's own HTTP client, which a GPU image may lack.
timeout "$TRAIN_LIMIT" python3 -m pytest -q -p no:cacheprovider --device "$DEVICE" \
  --ignore=tests/test_push.py ${PYTEST_ARGS:-} > "$OUT/pytest-cuda.log" 2>&1
echo "pytest --device $DEVICE: $(tail -n 1 "$OUT/pytest-cuda.log")"
wait

pack() {  # Files come back at most 16 MB each: the archive travels in parts (cat them to unpack).
  rm -f "$OUT"/runs-gpu.tgz.part-*
  tar czf - --exclude=state.pt -C runs gpu | split -b 15M - "$OUT/runs-gpu.tgz.part-"
}
pack

# Interrupted runs: export the release at the step their saved state reached.
for spec in "${RUNS[@]}"; do
  name=${spec%%|*}
  if [ ! -f $RUNS_DIR/$name/release/model.safetensors ] && [ -f $RUNS_DIR/$name/state.pt ]; then
    step=$(python3 -c "import sys, torch; print(torch.load(sys.argv[1], weights_only=True)['step'])" \
      $RUNS_DIR/$name/state.pt)
    python3 -m train.fit --resume --run-dir $RUNS_DIR/$name --steps "$step" --device "$DEVICE" --no-progress \
      >> $RUNS_DIR/$name.log 2>&1 &
  fi
done
wait

if [ "${CLI_SPEED:-0}" = 1 ]; then
  timeout 150 python3 benchmarks/cli_speed.py --files 0 --repeats 2 --device "$DEVICE" > "$OUT/cli-speed-cuda.log" 2>&1
  echo "cli_speed --device $DEVICE: $(tail -n 2 "$OUT/cli-speed-cuda.log")"
fi
for spec in "${RUNS[@]}"; do
  name=${spec%%|*}
  echo "$name: $(last_metrics $RUNS_DIR/$name)"
  tail -n 1 $RUNS_DIR/$name.log
done
pack
ls -la "$OUT"
