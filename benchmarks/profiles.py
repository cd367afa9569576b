"""Profiler-trace summary: time and peak memory at ~100 MB and ~1 GB, observe vs json.load.

    .venv/bin/python benchmarks/profiles.py [--sizes-mb 100 1000] [--peer-max-gb 4]

Builds chrome traces by replicating the events of the real torch 2.13 trace in tests/data
(profile_v2.json.gz) with shifted timestamps and renumbered profiler steps, written in Kineto's
layout under a temporary directory (deleted afterwards, never committed). Each measurement runs
in a fresh child process that reports its own peak RSS (ru_maxrss) and wall time:

- observe: ``collectors.profiler.summarize_trace`` (streaming, per-operator count, total and
  self time, input shapes, per-step self time by category);
- observe + pack: ``observe.pipeline.profiles.pack_trace``, what an upload does before the
  database: the summary plus SHA-256 and the gzip chunks of the raw file;
- json.load + pandas: the obvious peer, what people do by hand: ``json.load`` the whole file,
  a DataFrame of the complete events, groupby (name, cat) for count and total, and the same
  per-thread stack walk for self time.

The peer is skipped at a size where its peak memory, extrapolated from the smaller run, would
exceed ``--peer-max-gb``; the table says so. "idle" is the peak RSS of a child that only imports
the same modules, so the difference is what the summary itself needed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "data" / "profile_v2.json.gz"
sys.path.insert(0, str(ROOT))


# --- building traces -------------------------------------------------------------------------


def build_trace(path: Path, size_bytes: int) -> int:
    """Write a trace of at least `size_bytes`; returns the number of events written."""
    document = json.loads(gzip.decompress(SOURCE.read_bytes()))
    events = [e for e in document["traceEvents"] if e.get("ph") == "X" and e.get("cat") != "Trace"]
    start = min(e["ts"] for e in events)
    span = max(e["ts"] + e["dur"] for e in events) - start + 10.0
    head = {k: v for k, v in document.items() if k != "traceEvents"}
    count = 0
    with path.open("wb") as out:
        out.write(orjson.dumps(head)[:-1] + b', "traceEvents": [\n')
        written, replica = 0, 0
        while written < size_bytes:
            shift = replica * span
            for event in events:
                copy = dict(event, ts=round(event["ts"] + shift, 3))
                if copy["name"].startswith("ProfilerStep#"):
                    step = int(copy["name"].split("#")[1])
                    copy["name"] = f"ProfilerStep#{replica * 10 + step}"
                line = (b",\n" if count else b"") + orjson.dumps(copy, option=orjson.OPT_INDENT_2)
                out.write(line)
                written += len(line)
                count += 1
            replica += 1
        out.write(b"\n]}\n")
    return count


# --- the measured work, run in a child process -----------------------------------------------


def run_observe(path: Path) -> dict[str, Any]:
    from collectors.profiler import summarize_trace

    with path.open("rb") as handle:
        summary = summarize_trace(handle)
    return {"operators": len(summary.operators), "steps": len(summary.steps)}


def run_observe_pack(path: Path) -> dict[str, Any]:
    from observe.pipeline.profiles import pack_trace

    with path.open("rb") as handle:
        packed = pack_trace(handle)
    packed.close()
    return {"operators": len(packed.summary.operators), "steps": len(packed.summary.steps)}


def run_peer(path: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    with path.open("rb") as handle:
        document = json.load(handle)
    frame = pd.DataFrame(
        [
            (_operator_name(e), e.get("cat"), e.get("pid"), e.get("tid"), e["ts"], e["dur"])
            for e in document["traceEvents"]
            if e.get("ph") == "X"
        ],
        columns=["name", "cat", "pid", "tid", "ts", "dur"],
    )
    steps = {e["name"] for e in document["traceEvents"] if e["name"].startswith("ProfilerStep#")}
    del document
    frame["self_us"] = 0.0
    for _, group in frame.groupby(["pid", "tid"], sort=False):
        ordered = group.sort_values(["ts", "dur"], ascending=[True, False])
        child = np.zeros(len(ordered))
        ends = (ordered["ts"] + ordered["dur"]).to_numpy()
        starts = ordered["ts"].to_numpy()
        stack: list[int] = []
        for i in range(len(ordered)):
            while stack and ends[stack[-1]] <= starts[i]:
                stack.pop()
            if stack:
                child[stack[-1]] += min(ends[i], ends[stack[-1]]) - starts[i]
            stack.append(i)
        frame.loc[ordered.index, "self_us"] = ordered["dur"].to_numpy() - child
    table = frame.groupby(["name", "cat"]).agg(
        count=("dur", "size"), total_us=("dur", "sum"), self_us=("self_us", "sum")
    )
    return {"operators": len(table), "steps": len(steps)}


def _operator_name(event: dict[str, Any]) -> str:
    """Steps are one operator, as torch's key_averages() and observe name them."""
    name = event["name"]
    return "ProfilerStep*" if name.startswith("ProfilerStep#") else name


def run_idle(_path: Path) -> dict[str, Any]:
    import collectors.profiler  # noqa: F401

    return {}


WORK = {
    "observe": run_observe,
    "observe+pack": run_observe_pack,
    "peer": run_peer,
    "idle": run_idle,
}


def child_main(kind: str, path: Path) -> None:
    import numpy  # noqa: F401  (imports are not what is measured)
    import pandas  # noqa: F401

    started = time.perf_counter()
    result = WORK[kind](path)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **result}))


def measure(kind: str, path: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, str(path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the table -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--peer-max-gb", type=float, default=4.0)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child[0], Path(args.child[1]))
        return
    rows = []
    peer_mb_per_mb: float | None = None
    with tempfile.TemporaryDirectory(prefix="observe-bench-") as directory:
        idle = measure("idle", ROOT / "README.md")
        for size_mb in args.sizes_mb:
            path = Path(directory) / f"trace-{size_mb}mb.json"
            num_events = build_trace(path, size_mb * 1_000_000)
            file_mb = path.stat().st_size / 1e6
            print(f"built {path.name}: {file_mb:,.0f} MB, {num_events:,} events", file=sys.stderr)
            for kind in ("observe", "observe+pack", "peer"):
                if kind == "peer" and peer_mb_per_mb is not None:
                    estimate_gb = peer_mb_per_mb * file_mb / 1024
                    if estimate_gb > args.peer_max_gb:
                        rows.append(
                            (
                                file_mb,
                                num_events,
                                kind,
                                None,
                                None,
                                f"skipped: needs ~{estimate_gb:.0f} GB",
                            )
                        )
                        continue
                result = measure(kind, path)
                if "error" in result:
                    rows.append((file_mb, num_events, kind, None, None, result["error"]))
                    continue
                if kind == "peer":
                    peer_mb_per_mb = result["peak_mb"] / file_mb
                note = f"{result['operators']} operators, {result['steps']} steps"
                rows.append((file_mb, num_events, kind, result["seconds"], result["peak_mb"], note))
                print(
                    f"  {kind}: {result['seconds']:.1f} s, {result['peak_mb']:,.0f} MB",
                    file=sys.stderr,
                )
            path.unlink()
    print_table(rows, idle.get("peak_mb", 0.0))


def print_table(rows: list[tuple[Any, ...]], idle_mb: float) -> None:
    print(f"\nidle child (imports only): peak RSS {idle_mb:,.0f} MB\n")
    print("| trace | events | summarizer | time | MB/s | peak RSS | above idle | note |")
    print("|---:|---:|---|---:|---:|---:|---:|---|")
    for file_mb, events, kind, seconds, peak, note in rows:
        if seconds is None:
            print(f"| {file_mb:,.0f} MB | {events:,} | {kind} | - | - | - | - | {note} |")
            continue
        rate = file_mb / seconds
        print(
            f"| {file_mb:,.0f} MB | {events:,} | {kind} | {seconds:.1f} s | {rate:,.0f} "
            f"| {peak:,.0f} MB | {peak - idle_mb:,.0f} MB | {note} |"
        )


if __name__ == "__main__":
    main()
