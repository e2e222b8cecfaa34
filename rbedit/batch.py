"""Batch processing: walk inputs, mirror them under OUT, stream through the model, report.

- Inputs may be files or folders (walked recursively, sorted, hidden entries
  and non-image extensions ignored; the output folder is never walked).
- Outputs mirror the inputs: one folder → OUT/<path inside it>; several
  inputs → OUT/<path relative to their common parent>; the extension is
  `--format`. Two inputs that would still share an output (a.png, a.jpg) keep
  their extension in the name (a_jpg.png).
- Existing outputs are skipped unless `overwrite`, so a killed run resumes;
  an input is never overwritten.
- Pictures are read, prepared, edited and written a chunk at a time, so memory
  is bounded by the chunk, not the folder.
- Each file ends done, skipped or failed; failures are printed as one line
  each, `--report` gets one JSON line per file, and a summary closes the run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any

from rbedit.imageio import IMAGE_EXTENSIONS, WRITE_FORMATS, ImageError, file_key

# A chunk stops growing at this many bytes of decoded pictures (large photos),
# even when it holds fewer than batch_size files.
MAX_CHUNK_BYTES = 128 * 2**20
PARENT_CHECK_SECONDS = 0.5  # how often a worker checks that the main process is still there
# glibc malloc settings in workers (see _keep_freed_memory): mallopt parameter numbers and values.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_BYTES = 256 * 2**20  # free memory at the top of the heap kept for reuse, not returned
HEAP_ALLOCATIONS_UP_TO = 32 * 2**20  # larger blocks are mapped and unmapped on their own (glibc's maximum)


class PlanError(ValueError):
    """Inputs and output cannot be mapped onto each other (a usage problem)."""


@dataclass
class Job:
    """One input file and where its output goes."""

    input: Path
    rel: PurePosixPath  # the input's path relative to the mirrored root
    output: Path | None = None


@dataclass
class Plan:
    jobs: list[Job]
    protected: set[tuple[int, int]]  # (device, inode) of every input: never written to
    single_file_output: bool = False  # -o named an image file for a single input


def is_image_extension(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def walk_images(folder: Path, *, skip: Path | None = None) -> Iterator[Path]:
    """Image files under folder, recursively, in a stable (sorted) order; `skip` is not entered."""
    skip_real = os.path.realpath(skip) if skip is not None else None
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) != skip_real
        )
        for name in sorted(files):
            if not name.startswith(".") and is_image_extension(name):
                yield Path(root) / name


def collect_inputs(inputs: Sequence[str | os.PathLike], *, out: Path | None = None) -> list[tuple[Path, PurePosixPath]]:
    """(file, relative path) for every input image; folders are walked, files kept as given."""
    paths = [Path(p) for p in inputs]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise PlanError(f"no such file or folder: {', '.join(missing)}")
    if out is not None and any(p.is_dir() and os.path.realpath(p) == os.path.realpath(out) for p in paths):
        raise PlanError(f"the output folder {out} is an input folder; write somewhere else")
    if len(paths) == 1 and paths[0].is_dir():
        base = os.path.abspath(paths[0])
    else:
        anchors = [os.path.dirname(os.path.abspath(p)) for p in paths]
        base = os.path.commonpath(anchors)
    seen: set[str] = set()
    found = []
    for p in paths:
        files = walk_images(p, skip=out) if p.is_dir() else [p]
        for f in files:
            absolute = os.path.abspath(f)
            if absolute in seen:
                continue
            seen.add(absolute)
            found.append((f, PurePosixPath(Path(os.path.relpath(absolute, base)).as_posix())))
    return found


def plan(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    fmt: str = "png",
) -> Plan:
    """Map inputs onto outputs under `out` (or onto the file `out` for a single input file)."""
    out = Path(out)
    fmt = fmt.lower().lstrip(".")
    if f".{fmt}" not in WRITE_FORMATS:
        raise PlanError(f"unknown --format {fmt!r}; use one of {', '.join(s[1:] for s in WRITE_FORMATS)}")
    file_output = out.suffix.lower() in WRITE_FORMATS
    found = collect_inputs(inputs, out=None if file_output else out)
    if not found:
        raise PlanError("no input images found (folders are searched for " + ", ".join(sorted(IMAGE_EXTENSIONS)) + ")")
    protected = {k for f, _ in found if (k := file_key(f)) is not None}
    if file_output:
        if len(found) != 1 or Path(inputs[0]).is_dir():
            raise PlanError(f"-o {out} names an image file but there are {len(found)} inputs; give a folder")
        return Plan([Job(found[0][0], found[0][1], out)], protected, single_file_output=True)
    by_output: dict[PurePosixPath, list[int]] = {}
    for i, (_, rel) in enumerate(found):
        by_output.setdefault(rel.with_suffix(f".{fmt}"), []).append(i)
    names = [rel.with_suffix(f".{fmt}") for _, rel in found]
    for target, owners in by_output.items():
        if len(owners) > 1:  # a.png + a.jpg: keep the input extension in the names
            for i in owners:
                rel = found[i][1]
                names[i] = rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.').lower()}.{fmt}")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise PlanError(f"several inputs map to the same output {out / dup}; process them separately")
    jobs = [Job(f, rel, out / name) for (f, rel), name in zip(found, names)]
    return Plan(jobs, protected)


@dataclass
class Outcome:
    input: Path
    status: str  # "done", "skipped" or "failed"
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None


class Reporter:
    """Counts outcomes, prints failures and a progress bar on stderr, writes the JSONL report."""

    def __init__(self, *, total: int, report: Path | None = None, console: Any = None, label: str = "") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console or Console(stderr=True, soft_wrap=True)
        self.counts = {"done": 0, "skipped": 0, "failed": 0}
        self.started = time.perf_counter()
        self._report = None
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            self._report = open(report, "w", encoding="utf-8")  # a log: streamed, not atomic
        self._progress = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self._task = self._progress.add_task(label, total=total)
        self._progress.start()

    def record(self, outcome: Outcome) -> None:
        self.counts[outcome.status] += 1
        if outcome.status == "failed":
            self.console.print(f"rbedit: error: {_escape(outcome.error or str(outcome.input))}", highlight=False)
        if self._report is not None:
            line = {
                "input": str(outcome.input),
                "output": str(outcome.outputs[0]) if outcome.outputs else None,
                "status": outcome.status,
                "error": outcome.error,
            }
            if len(outcome.outputs) > 1:
                line["outputs"] = [str(p) for p in outcome.outputs]
            self._report.write(json.dumps(line) + "\n")
            self._report.flush()
        self._progress.advance(self._task)

    def close(self) -> None:
        self._progress.stop()
        if self._report is not None:
            self._report.close()
            self._report = None

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    def summary(self, what: str = "") -> str:
        seconds = time.perf_counter() - self.started
        c = self.counts
        text = f"{c['done']} done, {c['skipped']} skipped, {c['failed']} failed in {seconds:.{2 if seconds < 10 else 1}f} s"
        return f"{what}: {text}" if what else text


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# Errors that mean "this file is bad", reported and skipped; anything else stops the run.
FILE_ERRORS = (ImageError, ValueError, RuntimeError, OSError)


def pending(jobs: Iterable[Job], *, overwrite: bool, reporter: Reporter) -> Iterator[Job]:
    """Jobs whose outputs are still missing; existing outputs are reported skipped."""
    for job in jobs:
        if job.output is not None and not overwrite and job.output.exists():
            reporter.record(Outcome(job.input, "skipped", [job.output]))
        else:
            yield job


def _load_some(jobs: list[Job], load: Callable[[Job], list]) -> tuple[list, list[Outcome], list[Job]]:
    """Load jobs in order until MAX_CHUNK_BYTES of pictures: (loaded, failures, jobs left for later)."""
    loaded, failures, nbytes = [], [], 0
    for k, job in enumerate(jobs):
        if nbytes > MAX_CHUNK_BYTES:  # big photos: edit what we have before reading more
            return loaded, failures, jobs[k:]
        try:
            items = load(job)
        except FILE_ERRORS as err:
            failures.append(Outcome(job.input, "failed", error=_one_line(err, job.input)))
        else:
            loaded.append((job, items))
            nbytes += sum(i.picture.rgb.nbytes for i in items if getattr(i, "picture", None) is not None)
    return loaded, failures, []


def run(
    jobs: Sequence[Job],
    *,
    load: Callable[[Job], list],
    edit: Callable[[list], list],
    save: Callable[[Job, list, list], list[Path]],
    reporter: Reporter,
    batch_size: int,
    overwrite: bool = False,
    workers: int = 0,
    overlap: bool = False,
) -> None:
    """Stream jobs through load (read + prepare one file) → edit (model, a chunk at once) → save.

    load(job) → prepared items of that file; edit(items) → one result per item;
    save(job, items, results) → paths written. Bad files (errors from load or
    save) are reported and skipped; errors from edit (the model) stop the run.

    Reading, preparing and writing are Python work that holds the GIL, so with
    `workers` they run in forked processes (where the platform can fork):
    their only lasting effects may be on files. Without workers they run in
    this process.

    overlap=False (a model on the CPU): each worker takes whole chunks, reads,
    edits and writes them, with one torch thread; without workers, chunks go
    through one after another. The cores are then always busy with whole
    work: a model that spreads its threads over cores shared with readers and
    writers leaves them waiting on each other (2 threads on 2 cores beside
    two workers edited 4× slower than alone; benchmarks/cli_speed.py).
    overlap=True (a model on a GPU): the model runs here, and while it edits
    one chunk the workers (or two threads) read the next chunks and write the
    previous ones.
    """
    todo = pending(jobs, overwrite=overwrite, reporter=reporter)
    chunks = iter(lambda: list(islice(todo, batch_size)), [])
    if overlap:
        with _pool(workers, load=load, save=save) as stages:
            _run_overlapped(chunks, stages, edit, reporter, depth=max(workers, 1))
    elif workers > 0 and _can_fork():
        with _pool(workers, load=load, edit=edit, save=save) as (pool, _, _):
            _run_in_workers(chunks, pool, reporter, workers=workers)
    else:
        for chunk in chunks:
            for outcome in _whole_chunk(chunk, load, edit, save):
                reporter.record(outcome)


def _whole_chunk(jobs: list[Job], load: Callable, edit: Callable, save: Callable) -> list[Outcome]:
    """Read, edit and write jobs, MAX_CHUNK_BYTES of pictures at a time."""
    outcomes = []
    while jobs:
        loaded, failures, jobs = _load_some(jobs, load)
        outcomes += failures
        results = edit([item for _, items in loaded for item in items]) if loaded else []
        outcomes += _save_all(loaded, results, save)
    return outcomes


def _run_in_workers(chunks: Iterator[list[Job]], pool, reporter: Reporter, *, workers: int) -> None:
    """Whole chunks in the workers: every worker busy and one chunk queued."""
    running: deque = deque()
    for chunk in chunks:
        if len(running) > workers:
            _record_all(running.popleft(), reporter)
        running.append(pool.submit(_whole_chunk_in_worker, chunk))
    while running:
        _record_all(running.popleft(), reporter)


def _run_overlapped(chunks: Iterator[list[Job]], stages, edit: Callable, reporter: Reporter, *, depth: int) -> None:
    """Up to `depth` chunks read ahead and `depth` being written while the model edits one."""
    pool, load_chunk, save_chunk = stages
    reading: deque = deque()

    def read_ahead() -> None:
        while len(reading) < depth and (chunk := next(chunks, None)):
            reading.append(pool.submit(load_chunk, chunk))

    writing: deque = deque()
    read_ahead()
    while reading:
        loaded, failures, rest = reading.popleft().result()
        if rest:  # the chunk stopped at MAX_CHUNK_BYTES: read the rest next, in order
            reading.appendleft(pool.submit(load_chunk, rest))
        read_ahead()
        for outcome in failures:
            reporter.record(outcome)
        results = edit([item for _, items in loaded for item in items]) if loaded else []
        while len(writing) >= depth:  # (with one writer, chunks are written in order)
            _record_all(writing.popleft(), reporter)
        writing.append(pool.submit(save_chunk, loaded, results))
    while writing:
        _record_all(writing.popleft(), reporter)


def _record_all(future, reporter: Reporter) -> None:
    for outcome in future.result():
        reporter.record(outcome)


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


# The stage functions a forked worker runs; set in each worker by _install.
_STAGES: dict[str, Callable] = {}
# A forked worker holds this lock while it works on a chunk (the main process never takes it).
_BUSY = threading.Lock()


def _install(stages: dict[str, Callable], parent: int) -> None:
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    threading.Thread(target=_exit_with_parent, args=(parent,), name="rbedit-parent-watch", daemon=True).start()
    _STAGES.update(stages)
    _keep_freed_memory()
    torch = sys.modules.get("torch")
    if torch is not None:  # one thread per worker: the workers share the cores
        torch.set_num_threads(1)


def _keep_freed_memory() -> None:
    """Let glibc's malloc reuse freed blocks instead of returning them to the system (glibc only).

    Every model call allocates and frees megabytes of activations. By default
    glibc maps large blocks afresh and trims the heap once the top of it is
    free, so the next call faults the same memory in again: 6-10 thousand page
    faults per chunk of 64 digits in a worker (none in a long-lived process
    whose heap has settled). Kept, a worker's memory stays at its peak, which
    is bounded by the chunk. Measured (8 runs each of 1,000 digits, 2 workers):
    0.73-0.88 s against 0.74-1.04 s.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): keep the allocator's defaults
        return
    mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
    mallopt(M_MMAP_THRESHOLD, HEAP_ALLOCATIONS_UP_TO)


def _exit_with_parent(parent: int) -> None:
    """End this worker once its main process is gone.

    A main process killed outright (SIGKILL, the out-of-memory killer) cannot
    stop its workers, and they would wait for work forever, each holding a
    copy of the model. A chunk under way is finished first, so its files are
    written whole and no temporary file is left behind.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    with _BUSY:
        os._exit(1)


def _load_in_worker(jobs: list[Job]):
    with _BUSY:
        return _load_some(jobs, _STAGES["load"])


def _save_in_worker(loaded: list, results: list) -> list[Outcome]:
    with _BUSY:
        return _save_all(loaded, results, _STAGES["save"])


def _whole_chunk_in_worker(jobs: list[Job]) -> list[Outcome]:
    with _BUSY:
        return _whole_chunk(jobs, _STAGES["load"], _STAGES["edit"], _STAGES["save"])


@contextlib.contextmanager
def _pool(workers: int, **stages: Callable):
    """(executor, load_chunk, save_chunk): `workers` forked processes when possible, else two threads."""
    from concurrent.futures import BrokenExecutor, ProcessPoolExecutor, ThreadPoolExecutor

    if workers > 0 and _can_fork():
        # Forked, the workers inherit the stages (closures over the editor) without pickling.
        import multiprocessing

        context = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_install, initargs=(stages, os.getpid()))
        load_chunk, save_chunk = _load_in_worker, _save_in_worker
    else:
        pool = ThreadPoolExecutor(2, thread_name_prefix="rbedit-io")
        load_chunk = functools.partial(_load_some, load=stages["load"])
        save_chunk = functools.partial(_save_all, save=stages["save"])
    try:
        yield pool, load_chunk, save_chunk
    except BrokenExecutor as err:  # a worker was killed (out of memory, a crash in a decoder)
        raise RuntimeError(
            "a worker process died while reading, editing or writing images; finished outputs are kept, "
            "so rerunning resumes (--workers 0 works without worker processes)"
        ) from err
    finally:  # on an error or Ctrl-C, drop queued work; writes under way finish (they are atomic)
        pool.shutdown(wait=True, cancel_futures=True)


def _save_all(loaded: list, results: list, save: Callable[[Job, list, list], list[Path]]) -> list[Outcome]:
    """Save each job's share of the results; bad files become failed outcomes."""
    outcomes, k = [], 0
    for job, items in loaded:
        mine = results[k : k + len(items)]
        k += len(items)
        try:
            written = save(job, items, mine)
        except FILE_ERRORS as err:
            outcomes.append(Outcome(job.input, "failed", error=_one_line(err, job.input)))
        else:
            outcomes.append(Outcome(job.input, "done", written))
    return outcomes


def _one_line(err: BaseException, path: Path) -> str:
    message = " ".join(str(err).split()) or type(err).__name__
    return message if str(path) in message else f"{path}: {message}"
