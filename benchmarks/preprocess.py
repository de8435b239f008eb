"""Benchmark ``aslfr preprocess``: speed against a naive pandas baseline, and flat peak memory.

    .venv/bin/python benchmarks/preprocess.py [--files 20] [--sequences-per-file 40]

1. Speed: sequences per second of ``preprocess.run`` (1 and ``--workers`` processes) against a
   naive baseline that reads every parquet file whole with pandas (all 1,630 columns), selects
   the 164 it needs, preprocesses each sequence with the same numpy functions and saves one
   array. Measured in this run, on the same synthetic dataset, best of ``--repeats``.
2. Memory: peak memory of ``run`` on the first 10 and on all 20 files, each in a fresh
   subprocess: the process tree (the run and its workers, PSS) sampled from /proc, and the main
   process's peak RSS (VmHWM). ``run`` streams its outputs, so its peak should not grow with the
   number of files. The naive baseline is measured the same way, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from aslfr_lib import landmarks
from aslfr_lib import preprocess as pp


def make_dataset(root: Path, files: int, sequences_per_file: int) -> Path:
    """A synthetic dataset of ``files`` parquet files (kept between runs in ``root``)."""
    from aslfr_lib.synthetic import SynthConfig, generate

    data = root / f"synthetic-{files}x{sequences_per_file}"
    if not (data / "train.csv").is_file():
        config = SynthConfig(
            out=str(data),
            sequences=files * sequences_per_file,
            participants=max(8, files),
            seed=0,
            sequences_per_file=sequences_per_file,
        )
        generate(config, progress=True)
    return data


def first_files(data: Path, files: int, target: Path) -> Path:
    """A view of ``data`` with only its first ``files`` parquet files (train.csv filtered)."""
    import pandas as pd

    listed = pd.read_csv(data / "train.csv", keep_default_na=False)
    keep = list(dict.fromkeys(listed["path"]))[:files]
    target.mkdir(parents=True, exist_ok=True)
    listed[listed["path"].isin(keep)].to_csv(target / "train.csv", index=False)
    for folder in {Path(p).parent for p in keep}:
        link = target / folder
        if not link.exists():
            link.symlink_to((data / folder).resolve(), target_is_directory=True)
    return target


def naive_baseline(data: Path, out: Path, frames: int = 128) -> int:
    """What a first notebook does: whole files through pandas, everything kept in memory."""
    import pandas as pd

    listed = pd.read_csv(data / "train.csv", keep_default_na=False)
    X = []
    for path, rows in listed.groupby("path", sort=False):
        table = pd.read_parquet(data / path)  # all 1,630 columns
        selected = table[landmarks.SELECTED_COLUMNS]
        wanted = set(rows["sequence_id"])
        for sequence_id, raw in selected.groupby(level=0, sort=False):
            if sequence_id in wanted:
                X.append(pp.preprocess_sequence(raw.to_numpy(np.float32), frames=frames))
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "X.npy", np.stack(X))
    return len(X)


def ours(data: Path, out: Path, workers: int) -> int:
    config = pp.PreprocessConfig(
        data=str(data), out=str(out), workers=workers, val_fraction=0.0, min_frames_per_char=0
    )
    summary = pp.run(config, progress=False)
    return summary["listed"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function, *args) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, sequences)."""
    start, start_cpu = time.perf_counter(), cpu_seconds()
    count = function(*args)
    return time.perf_counter() - start, cpu_seconds() - start_cpu, count


# ----------------------------------------------------------------------------------------------
# Peak memory of a process tree, sampled from /proc (forkserver workers are not children of the
# measured process, so getrusage cannot see them). PSS shares each library page among the
# processes that map it, so four Python processes do not count numpy four times.


def process_memory_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as file:
            for line in file:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    with open(f"/proc/{pid}/statm") as file:  # older kernels: RSS
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def tree_memory_bytes(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            total += process_memory_bytes(current)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as file:
                    stack.extend(int(child) for child in file.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def measure_in_this_process(kind: str, data: Path, out: Path, workers: int) -> dict:
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_memory_bytes(os.getpid()))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if kind == "naive":
        naive_baseline(data, out)
    else:
        ours(data, out, workers)
    done.set()
    sampler.join()
    # VmHWM, not getrusage's ru_maxrss: the latter keeps the high-water mark of the forked
    # parent image that exec replaced, so it would report the benchmark's own peak.
    status = Path("/proc/self/status").read_text().splitlines()
    high_water_kib = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
    return {"tree_peak_mib": peak[0] / 2**20, "main_peak_mib": high_water_kib / 1024}


def measure_in_subprocess(kind: str, data: Path, out: Path, workers: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--child-data",
        str(data),
        "--child-out",
        str(out),
        "--workers",
        str(workers),
    ]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20, help="parquet files (>= 20)")
    parser.add_argument("--sequences-per-file", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings")
    parser.add_argument("--cache", default="data/benchmarks", help="where datasets are kept")
    parser.add_argument("--child", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--child-data", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        measured = measure_in_this_process(
            args.child, Path(args.child_data), Path(args.child_out), args.workers
        )
        print(json.dumps(measured))
        return

    data = make_dataset(Path(args.cache), args.files, args.sequences_per_file)
    scratch = Path(tempfile.mkdtemp(prefix="aslfr-bench-"))
    try:
        print(f"dataset: {data} ({args.files} files x {args.sequences_per_file} sequences)")
        results = {}
        for name, function, extra in (
            ("naive pandas, all columns", naive_baseline, ()),
            ("run(), workers=1", ours, (1,)),
            (f"run(), workers={args.workers}", ours, (args.workers,)),
        ):
            best = None
            for repeat in range(args.repeats):
                out = scratch / f"speed-{len(results)}-{repeat}"
                measured = timed(function, data, out, *extra)
                best = measured if best is None else min(best, measured)
                shutil.rmtree(out, ignore_errors=True)
            results[name] = best
        naive_seconds, naive_cpu, naive_count = results["naive pandas, all columns"]
        print(
            f"\n{'method':<28} {'wall s':>7} {'sequences/s':>12} {'vs naive':>9}"
            f" {'CPU s':>7} {'CPU vs naive':>13}"
        )
        for name, (seconds, cpu, count) in results.items():
            ratio = (count / seconds) / (naive_count / naive_seconds)
            cpu_ratio = f"{(naive_cpu / naive_count) / (cpu / count):>12.1f}x"
            if args.workers > 1 and name.endswith(f"workers={args.workers}"):
                cpu_ratio = f"{'(in workers)':>13}"  # their CPU is not this process's
            print(
                f"{name:<28} {seconds:>7.2f} {count / seconds:>12.1f} {ratio:>8.1f}x"
                f" {cpu:>7.2f} {cpu_ratio}"
            )
        load = os.getloadavg()[0]
        print(f"(best of {args.repeats} by wall time; {os.cpu_count()} CPUs, load {load:.1f})")

        print(
            "\npeak memory (MiB), each in a fresh subprocess. tree: PSS of the process and its"
            " workers summed, sampled from /proc every 10 ms; main process: its peak RSS (VmHWM)"
        )
        print(f"{'method':<6} {'files':>5} {'tree peak':>10} {'main process peak':>18}")
        for kind in ("ours", "naive"):
            for files in (10, args.files):
                view = first_files(data, files, scratch / f"view-{files}")
                out = scratch / f"memory-{kind}-{files}"
                measured = measure_in_subprocess(kind, view, out, args.workers)
                print(
                    f"{kind:<6} {files:>5} {measured['tree_peak_mib']:>10.0f}"
                    f" {measured['main_peak_mib']:>18.0f}"
                )
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
