"""Parsing Prometheus text: observe's parser against prometheus_client's, in one run.

`observe collect prometheus` parses every scrape of dcgm-exporter or node-exporter. This
measures, on scrapes the size of a large GPU node (dcgm-exporter's default counters on 8 GPUs,
and node-exporter on a 64-CPU host, built from the recorded fixtures in tests/data/prometheus):

- the time to parse one scrape with `collectors.prometheus.parse_exposition` and with
  `prometheus_client.parser.text_string_to_metric_families` (the reference parser);
- whether each keeps the metric names as the exporter wrote them: prometheus_client appends
  ``_total`` to the samples of a counter family that lacks it, which renames DCGM's counters.

Usage:
    .venv/bin/python benchmarks/prometheus_parse.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from collectors.prometheus import parse_exposition  # noqa: E402

DATA = ROOT / "tests" / "data" / "prometheus"
NOW = dt.datetime(2026, 11, 16, 14, 5, tzinfo=dt.UTC)


def dcgm_scrape(num_gpus: int) -> str:
    """dcgm-exporter's default counters for `num_gpus` GPUs (GPU 0's series, renumbered)."""
    lines = []
    for line in (DATA / "dcgm-exporter.txt").read_text().splitlines():
        if line.startswith("#"):
            lines.append(line)
        elif 'gpu="0"' in line:
            for gpu in range(num_gpus):
                lines.append(
                    line.replace('gpu="0"', f'gpu="{gpu}"').replace("nvidia0", f"nvidia{gpu}")
                )
    return "\n".join(lines) + "\n"


def node_scrape(num_cpus: int) -> str:
    """node-exporter's scrape with its CPU series for `num_cpus` CPUs."""
    lines = []
    for line in (DATA / "node-exporter-2.txt").read_text().splitlines():
        match = re.match(r'(node_cpu_\w+)\{cpu="0",(.*)$', line)
        if match:
            lines.extend(f'{match[1]}{{cpu="{cpu}",{match[2]}' for cpu in range(num_cpus))
        elif 'cpu="' not in line:
            lines.append(line)
    return "\n".join(lines) + "\n"


def ours(text: str) -> list[str]:
    return [series.name for series in parse_exposition(text, scraped_at=NOW)]


def prometheus_client(text: str) -> list[str]:
    return [s.name for family in text_string_to_metric_families(text) for s in family.samples]


def exporter_names(text: str) -> list[str]:
    """Sample names as the text writes them (blank sentinels included)."""
    return [
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    ]


def median_ms(parse: Callable[[str], list[str]], text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        parse(text)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="parses per scrape and parser")
    args = parser.parse_args()
    scrapes = {"dcgm-exporter, 8 GPUs": dcgm_scrape(8), "node-exporter, 64 CPUs": node_scrape(64)}
    print(f"{'scrape':<24} {'samples':>8} {'parser':<18} {'ms/scrape':>10} {'renamed':>8}")
    for label, text in scrapes.items():
        written = exporter_names(text)
        as_written = set(written)
        for name, parse in (("observe", ours), ("prometheus_client", prometheus_client)):
            renamed = sum(1 for sample in parse(text) if sample not in as_written)
            ms = median_ms(parse, text, args.repeat)
            print(f"{label:<24} {len(written):>8} {name:<18} {ms:>10.2f} {renamed:>8}")


if __name__ == "__main__":
    main()
