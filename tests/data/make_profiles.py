"""Record the profiler-trace fixtures: two versions of a small model, torch 2.13 on CPU.

    .venv/bin/python tests/data/make_profiles.py

writes ``profile_v1.json.gz`` and ``profile_v2.json.gz`` (chrome traces as
``prof.export_chrome_trace`` writes them, gzipped) and, for each, ``profile_vN.key_averages.json``:
what torch's own ``prof.key_averages()`` reports for the same profiling cycle (count, total and
self CPU time per operator), which the parser tests hold observe's summary to.

v2 differs from v1 the way a real release might: its hidden layer is four times wider (a bigger
matmul, so ``aten::addmm`` takes longer) and it adds a layer norm (new operators). v1 records 5
profiler steps and v2 4, so the diff has to compare them per step.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule

HERE = Path(__file__).parent
BATCH, FEATURES, CLASSES = 64, 256, 10


def build(version: str) -> torch.nn.Module:
    if version == "v1":
        layers = [torch.nn.Linear(FEATURES, 256), torch.nn.ReLU(), torch.nn.Linear(256, CLASSES)]
    else:
        layers = [
            torch.nn.Linear(FEATURES, 1024),
            torch.nn.LayerNorm(1024),
            torch.nn.ReLU(),
            torch.nn.Linear(1024, CLASSES),
        ]
    return torch.nn.Sequential(*layers).eval()


def record(version: str, active_steps: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    model = build(version)
    inputs = torch.randn(BATCH, FEATURES)
    averages: dict[str, dict[str, float]] = {}
    trace_path = HERE / f"profile_{version}.json.gz"

    def ready(prof: profile) -> None:
        with tempfile.TemporaryDirectory() as directory:
            plain = Path(directory) / f"profile_{version}.json"
            prof.export_chrome_trace(str(plain))
            with (
                trace_path.open("wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out,
            ):
                out.write(plain.read_bytes())
        for event in prof.key_averages():
            averages[event.key] = {
                "count": event.count,
                "cpu_time_total_us": event.cpu_time_total,
                "self_cpu_time_total_us": event.self_cpu_time_total,
            }

    plan = schedule(wait=0, warmup=1, active=active_steps, repeat=1)
    with (
        torch.no_grad(),
        profile(
            activities=[ProfilerActivity.CPU],
            record_shapes=True,
            schedule=plan,
            on_trace_ready=ready,
        ) as prof,
    ):
        for _ in range(1 + active_steps):
            model(inputs)
            prof.step()
    (HERE / f"profile_{version}.key_averages.json").write_text(
        json.dumps(averages, indent=1, sort_keys=True) + "\n"
    )
    return averages


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}", file=sys.stderr)
    for version, steps in (("v1", 5), ("v2", 4)):
        averages = record(version, steps)
        print(f"{version}: {steps} steps; prof.key_averages():")
        for key, row in sorted(
            averages.items(), key=lambda item: -item[1]["self_cpu_time_total_us"]
        ):
            print(
                f"  {key:28s} count {row['count']:4d}  total {row['cpu_time_total_us']:10.1f} us"
                f"  self {row['self_cpu_time_total_us']:10.1f} us"
            )


if __name__ == "__main__":
    main()
