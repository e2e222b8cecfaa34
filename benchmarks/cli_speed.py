"""Speed benchmark of the rbedit CLI (prints numbers; not a test).

    python benchmarks/cli_speed.py [--model REF] [--files 10000] [--throughput-files 1000] [--repeats 5]
                                   [--device cpu|cuda]

Measures on this machine, in one run:
1. `rbedit --help` wall time (best and median of --repeats), and that torch is not imported;
2. one-image `rbedit transfer` wall time next to `python -c "import torch"`;
3. batch throughput of `rbedit transfer` over --throughput-files digit PNGs, next to the
   model-only forward throughput (encode z + decode, same batch size, same threads), both on
   --device (model-only on a GPU: from CPU tensors and back, as the CLI's batches go):
   the best of each, and the median ratio of each batch run to the model-only run before it;
   beside it, what creating one output file costs on the output's file system (ext4 here spends
   0.1-0.6 ms of CPU per new file in block groups with many recently deleted files, against
   about 0.02 ms otherwise: a third of a worker's time per image, so read the ratio with it);
4. peak RSS of `rbedit transfer` over --files PNGs; then the same run killed (SIGKILL) half-way
   and rerun, and its outputs compared byte for byte with the uninterrupted run.

The model is --model if given, else the embedded digits model when it has weights,
else a randomly initialised model with the default ModelConfig (same compute as a
trained one). Inputs are styled digits from the bundled MNIST subset (train/data),
64×64 PNGs, so preparation (resize to the model size) is part of the work.
Floors (issue 3): --help ≤ 0.25 s; one transfer ≤ import torch + 0.8 s;
batch ≥ 50 % of model-only; peak RSS ≤ 1.5 GB; resumed outputs identical.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def rbedit_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rbedit.cli", *args]


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wall(cmd: list[str], *, repeats: int = 1, check: bool = True) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), cwd=ROOT)
        times.append(time.perf_counter() - start)
        if check and proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    return times


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of cmd, measured from a fresh wrapper process."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, env=child_env(), cwd=ROOT)
    seconds, mb, rc = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"failed ({rc}): {' '.join(cmd)}")
    return float(seconds), float(mb)


def make_digits(folder: Path, n: int, seed: int = 0) -> None:
    """n styled 64×64 digit PNGs (held-out source digits, protocol styles) in folder/NNN/."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from train.data.digits import load_source_digits, make_unlabelled, split_sources

    digits, labels = load_source_digits(None)
    pool = split_sources(labels, seed=0).probe_eval
    copies = -(-n // len(pool))
    styled = make_unlabelled(digits, labels, pool, 64, copies=copies, seed=seed)
    order = np.random.default_rng(seed).permutation(len(styled))[:n]
    for k, i in enumerate(order):
        sub = folder / f"{k // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(styled.images[i]).save(sub / f"{k:05d}.png")


def resolve_model(ref: str | None, work: Path) -> tuple[str, str]:
    sys.path.insert(0, str(ROOT))
    from rbedit.hub import ModelRefError, resolve_model as resolve

    try:
        return str(resolve(ref).folder), ref or "digits (embedded)"
    except ModelRefError as err:
        if ref is not None:
            raise SystemExit(str(err))
    import torch

    from rbedit.checkpoint import save_checkpoint
    from rbedit.model import ModelConfig, RbVAE

    torch.manual_seed(0)
    folder = save_checkpoint(RbVAE(ModelConfig()), work / "random-model")
    return str(folder), "random-init default ModelConfig (embedded digits model has no weights yet)"


def model_only_throughput(model_dir: str, n: int, device: str = "cpu") -> float:
    """Images/s of encode z + decode on prepared tensors, batches of BATCH.

    Runs in a fresh process with the OpenMP settings the CLI uses
    (OMP_WAIT_POLICY=PASSIVE unless set), so both sides face the same threading.
    """
    code = f"""
import time, torch
from rbedit.checkpoint import load_checkpoint
model = load_checkpoint({model_dir!r}).to({device!r})
s = model.config.image_size
x = torch.rand({n}, 3, s, s) * 2 - 1  # on the CPU, as the CLI's prepared batches are
e = model.e_ref.detach()
sync = torch.cuda.synchronize if {device!r}.startswith("cuda") else (lambda: None)
with torch.inference_mode():
    model.decode(model.encode_z(x[:{BATCH}].to({device!r})).mu, e.expand({BATCH}, -1))  # warm-up
    sync()
    start = time.perf_counter()
    for i in range(0, {n}, {BATCH}):
        chunk = x[i : i + {BATCH}].to({device!r})
        model.decode(model.encode_z(chunk).mu, e.expand(len(chunk), -1)).cpu()
    print({n} / (time.perf_counter() - start))
"""
    env = child_env()
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return float(out.stdout.strip())


def file_create_us(folder: Path, n: int = 1000) -> float:
    """Microseconds per atomic write of a small file into a new folder (what each output costs)."""
    sys.path.insert(0, str(ROOT))
    from rbedit.atomic import write_atomic

    folder.mkdir(parents=True)
    data = bytes(3000)  # about a 32×32 digit PNG
    start = time.perf_counter()
    for i in range(n):
        write_atomic(folder / f"{i:05d}.png", data)
    return (time.perf_counter() - start) / n * 1e6


def compare_trees(a: Path, b: Path) -> tuple[int, int, int]:
    """(files compared, files differing or missing, stray temporary files in b)."""
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    bad = sum(1 for rel in files if not (b / rel).is_file() or (b / rel).read_bytes() != (a / rel).read_bytes())
    stray = sum(1 for p in b.rglob(".*.tmp"))
    return len(files), bad, stray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--throughput-files", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--device", default="cpu", help="device of the batch throughput runs (one-image and RSS runs: cpu)")
    args = parser.parse_args()

    # An installed package has compiled bytecode; a checkout run with PYTHONDONTWRITEBYTECODE has not.
    compileall.compile_dir(str(ROOT / "rbedit"), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="rbedit-bench-"))
    try:
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")
        model_dir, model_name = resolve_model(args.model, work)
        print(f"model: {model_name}")

        # 1. --help
        helps = wall(rbedit_cmd("--help"), repeats=args.repeats)
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; sys.argv=['rbedit','--help']\nfrom rbedit.cli.app import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)"],
            capture_output=True, text=True, env=child_env(), cwd=ROOT,
        )
        bare = wall([sys.executable, "-c", "pass"], repeats=args.repeats)
        print(f"rbedit --help: best {min(helps):.3f} s, median {statistics.median(helps):.3f} s "
              f"(python -c pass: best {min(bare):.3f} s); torch imported: {probe.stderr.strip()}  [floor ≤ 0.25 s]")

        # 2. one-image transfer vs import torch
        print("generating inputs ...", flush=True)
        few = work / "few"
        make_digits(few, args.throughput_files, seed=1)
        one = sorted(few.rglob("*.png"))[:2]
        import_torch = [sys.executable, "-c", "import torch"]
        one_transfer = rbedit_cmd("transfer", str(one[0]), str(one[1]), "-o", str(work / "one.png"), "-m", model_dir,
                                  "--device", "cpu", "--overwrite")
        torch_times, transfer_times = [], []
        for _ in range(args.repeats):  # interleaved: this machine's speed drifts by tenths of a second
            torch_times += wall(import_torch)
            transfer_times += wall(one_transfer)
        t_torch, t_one = min(torch_times), min(transfer_times)
        print(f"one-image transfer: best {t_one:.3f} s (median {statistics.median(transfer_times):.3f}); "
              f"import torch: best {t_torch:.3f} s (median {statistics.median(torch_times):.3f}); "
              f"overhead {t_one - t_torch:+.3f} s  [floor ≤ import torch + 0.8 s]")

        # 3. batch throughput vs model-only forward
        n = args.throughput_files
        batch_walls, batch_runs, model_rates = [], [], []
        for r in range(args.repeats):  # interleaved with the model-only runs; the best of each
            model_rates.append(model_only_throughput(model_dir, n, args.device))
            start = time.perf_counter()
            proc = subprocess.run(
                rbedit_cmd("transfer", str(one[0]), str(few), "-o", str(work / f"batch{r}"), "-m", model_dir,
                           "--device", args.device, "--batch-size", str(BATCH)),
                capture_output=True, text=True, env=child_env(), cwd=ROOT,
            )
            batch_walls.append(time.perf_counter() - start)
            # The summary line times the batch itself: from the first input to the last output.
            summary = re.search(r"(\d+) done, 0 skipped, 0 failed in ([\d.]+) s", proc.stderr)
            if proc.returncode != 0 or summary is None or int(summary[1]) != n:
                raise SystemExit(f"batch transfer failed:\n{proc.stderr}")
            batch_runs.append(float(summary[2]))
        batch_wall, batch_run, model_rate = min(batch_walls), min(batch_runs), max(model_rates)
        print(f"batch transfer of {n} PNGs (batch {BATCH}): wall {batch_wall:.2f} s → {n / batch_wall:.0f} img/s end to end; "
              f"the batch itself (its summary line: first input to last output) {batch_run:.2f} s → {n / batch_run:.0f} img/s "
              f"(runs: {', '.join(f'{n / t:.0f}' for t in batch_runs)})")
        print(f"model-only forward (encode z + decode, batch {BATCH}): {model_rate:.0f} img/s "
              f"(runs: {', '.join(f'{r:.0f}' for r in model_rates)}); "
              f"CLI/model = {n / batch_run / model_rate:.0%} for the batch, {n / batch_wall / model_rate:.0%} end to end  "
              f"[floor ≥ 50 %]")
        # Each batch run beside the model-only run just before it: the pair shares the machine's phase.
        paired = [n / t / rate for t, rate in zip(batch_runs, model_rates)]
        print(f"paired runs, batch/model-only: {', '.join(f'{r:.0%}' for r in paired)}; median {statistics.median(paired):.0%}")
        print(f"file system: an atomic write of a 3 kB file costs {file_create_us(work / 'create-probe'):.0f} µs "
              f"(about 20 on a settled ext4; hundreds after mass deletions)")

        # 4. peak RSS over many files, and kill + resume identity
        if args.files:
            print(f"generating {args.files} inputs ...", flush=True)
            many = work / "many"
            make_digits(many, args.files, seed=2)
            src = str(sorted(many.rglob("*.png"))[0])
            cmd = lambda out: rbedit_cmd("transfer", src, str(many), "-o", str(out), "-m", model_dir, "--device", "cpu")  # noqa: E731
            seconds, mb = peak_rss_mb(cmd(work / "whole"))
            print(f"{args.files} files: {seconds:.1f} s ({args.files / seconds:.0f} img/s), peak RSS {mb:.0f} MB  [floor ≤ 1536 MB]")

            resumed = work / "resumed"
            proc = subprocess.Popen(cmd(resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env(), cwd=ROOT)
            while proc.poll() is None:
                done = sum(1 for _ in resumed.rglob("*.png")) if resumed.exists() else 0
                if done >= args.files // 2:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.2)
            proc.wait()
            at_kill = sum(1 for _ in resumed.rglob("*.png"))
            rerun = subprocess.run(cmd(resumed), capture_output=True, text=True, env=child_env(), cwd=ROOT)
            total, bad, stray = compare_trees(work / "whole", resumed)
            summary = rerun.stderr.strip().splitlines()[-1] if rerun.stderr.strip() else ""
            print(f"killed (SIGKILL) at {at_kill} outputs, rerun: '{summary}'; "
                  f"{total - bad}/{total} outputs byte-identical to the uninterrupted run, "
                  f"{stray} stray temporary files")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
