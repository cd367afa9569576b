"""Change point detection: observe's detector next to ruptures' Pelt and Binseg, in one run.

What it measures:

1. Time to segment a latency-like series (log-normal noise with three level shifts) of 10k,
   100k, 525k (a year of minute buckets) and 1M points. ruptures runs only at the sizes where
   it finishes in reasonable time (Pelt is quadratic in the worst case: 10k; Binseg: up to
   100k); the table says so for the others.
2. Accuracy on synthetic series with known change points, drawn from a fixed seed: steps in
   log-normal latency, steps with heavy-tailed noise and outliers, steps in autocorrelated
   noise, and series without any change (steady, heavy-tailed, autocorrelated wander, a slow
   trend). Scored as TCPDBench scores: F1 with a margin of 5 points and the segmentation
   covering, with 0 counted as a change point of every series.
3. With --tcpd PATH (a checkout of the Turing Change Point Dataset, github.com/alan-turing-
   institute/TCPD, whose datasets/<name>/<name>.json and annotations.json are read), the
   same scores against the human annotations of every univariate series present, averaged
   per series over annotators as TCPDBench does (van den Burg and Williams 2020), next to
   "zero" (no change point at all), the baseline that paper found hard to beat, and observe
   once more on the raw values (its own default: log scale when every value is positive).
4. With --tcpdbench PATH as well (a checkout of github.com/alan-turing-institute/TCPDBench),
   the default-setting scores that benchmark reports for its methods (analysis/output/scores/
   default_f1_scores.json and default_cover_scores.json), averaged over the same series; a
   method that failed on a series (most cannot take missing values) counts 0 there.

The ruptures baselines get the log of the synthetic latency series (observe takes logs itself)
and use the penalty ruptures documents for a mean change, log(n) sigma^2,
times 3 as observe (the modified BIC) with sigma from the median absolute deviation of the
first differences (given the true noise scale they would do no better on real data, where it
is unknown), the l2 cost, and the same minimum segment length.

Usage:
    .venv/bin/python benchmarks/changepoints.py
    .venv/bin/python benchmarks/changepoints.py --tcpd ../TCPD --tcpdbench ../TCPDBench
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzers.latency import MIN_SIZE, detect_change_points  # noqa: E402

Detector = Callable[[np.ndarray], list[int]]
MARGIN = 5
#: The largest sizes at which each ruptures method is timed.
RUPTURES_LIMITS = {"ruptures Pelt": 10_000, "ruptures Binseg": 100_000}


# --- detectors -------------------------------------------------------------------------------


def observe_detector(values: np.ndarray) -> list[int]:
    return detect_change_points(values)


def _ruptures_penalty(values: np.ndarray) -> float:
    differences = np.diff(values)
    sigma = 1.4826 * np.median(np.abs(differences - np.median(differences))) / math.sqrt(2)
    return 3.0 * math.log(values.size) * max(sigma, 1e-12) ** 2


def ruptures_detector(method: str) -> Detector:
    import ruptures

    def detect(values: np.ndarray) -> list[int]:
        signal = np.asarray(values, dtype=np.float64)
        if signal.size < 2 * MIN_SIZE:
            return []
        algorithm = getattr(ruptures, method)(model="l2", min_size=MIN_SIZE, jump=1)
        breakpoints = algorithm.fit(signal).predict(pen=_ruptures_penalty(signal))
        return [int(b) for b in breakpoints if b < signal.size]

    return detect


def zero_detector(values: np.ndarray) -> list[int]:
    return []


# --- scores (TCPDBench's definitions, analysis/scripts/metrics.py) ---------------------------


def true_positives(truth: set[int], predicted: set[int], margin: int = MARGIN) -> set[int]:
    remaining = set(predicted)
    found = set()
    for tau in sorted(truth):
        close = sorted((abs(tau - x), x) for x in remaining if abs(tau - x) <= margin)
        if close:
            found.add(tau)
            remaining.remove(close[0][1])
    return found


def f_measure(annotations: Sequence[Sequence[int]], predicted: Sequence[int]) -> float:
    """F1 against several annotators: precision against the union of their change points,
    recall averaged over annotators; 0 counts as a change point everywhere."""
    truths = [set(a) | {0} for a in annotations]
    guesses = set(predicted) | {0}
    union = set().union(*truths)
    precision = len(true_positives(union, guesses)) / len(guesses)
    recall = float(np.mean([len(true_positives(t, guesses)) / len(t) for t in truths]))
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def covering(annotations: Sequence[Sequence[int]], predicted: Sequence[int], n: int) -> float:
    """Segmentation covering (Arbelaez et al. 2011), averaged over annotators."""
    guess = _segments(predicted, n)
    scores = []
    for annotation in annotations:
        truth = _segments(annotation, n)
        total = 0.0
        for a, b in truth:
            total += (b - a) * max(_jaccard(a, b, c, d) for c, d in guess)
        scores.append(total / n)
    return float(np.mean(scores))


def _segments(points: Sequence[int], n: int) -> list[tuple[int, int]]:
    bounds = [0, *sorted({p for p in points if 0 < p < n}), n]
    return list(itertools.pairwise(bounds))


def _jaccard(a: int, b: int, c: int, d: int) -> float:
    overlap = max(0, min(b, d) - max(a, c))
    return overlap / (max(b, d) - min(a, c))


# --- data ------------------------------------------------------------------------------------


def latency_steps(
    rng: np.random.Generator, n: int, num_changes: int, noise: str
) -> tuple[np.ndarray, list[int]]:
    """A p95-like series: log-normal around levels that change by 1.2x to 2x up or down."""
    points = sorted(
        rng.choice(np.arange(MIN_SIZE * 4, n - MIN_SIZE * 4), num_changes, replace=False)
    )
    while num_changes and min(np.diff([0, *points, n])) < 4 * MIN_SIZE:
        points = sorted(
            rng.choice(np.arange(MIN_SIZE * 4, n - MIN_SIZE * 4), num_changes, replace=False)
        )
    level = np.log(50.0)
    levels = [level]
    for _ in points:
        level += rng.choice([-1, 1]) * rng.uniform(np.log(1.2), np.log(2.0))
        levels.append(level)
    log_signal = np.repeat(levels, np.diff([0, *points, n]))
    if noise == "normal":
        log_signal = log_signal + rng.normal(0, 0.08, n)
    elif noise == "heavy":
        log_signal = log_signal + 0.05 * rng.standard_t(2, n)
        spikes = rng.random(n) < 0.01
        log_signal[spikes] += rng.uniform(1.0, 3.0, int(spikes.sum()))
    elif noise == "autocorrelated":
        wander = np.zeros(n)
        shocks = rng.normal(0, 0.03, n)
        for i in range(1, n):
            wander[i] = 0.7 * wander[i - 1] + shocks[i]
        log_signal = log_signal + wander
    return np.exp(log_signal), [int(p) for p in points]


def synthetic_series(seed: int = 7) -> list[tuple[str, np.ndarray, list[int]]]:
    rng = np.random.default_rng(seed)
    series = []
    for noise in ("normal", "heavy", "autocorrelated"):
        for i in range(10):
            n = int(rng.integers(300, 3000))
            values, points = latency_steps(rng, n, int(rng.integers(1, 5)), noise)
            series.append((f"steps-{noise}-{i}", values, points))
    for i in range(5):
        n = int(rng.integers(300, 3000))
        series.append((f"steady-{i}", latency_steps(rng, n, 0, "normal")[0], []))
        series.append((f"steady-heavy-{i}", latency_steps(rng, n, 0, "heavy")[0], []))
        wander = np.zeros(n)
        for t in range(1, n):
            wander[t] = 0.95 * wander[t - 1] + rng.normal(0, 0.02)
        series.append((f"wander-{i}", 50 * np.exp(wander), []))
        trend = np.linspace(0, rng.uniform(0.1, 0.3), n)
        series.append((f"trend-{i}", 50 * np.exp(trend + rng.normal(0, 0.08, n)), []))
    return series


def tcpd_series(path: Path) -> list[tuple[str, np.ndarray, list[list[int]]]]:
    annotations = json.loads((path / "annotations.json").read_text())
    series = []
    for name in sorted(annotations):
        file = path / "datasets" / name / f"{name}.json"
        if not file.exists():
            continue
        data = json.loads(file.read_text())
        if data["n_dim"] != 1:
            continue
        raw = [np.nan if v is None else float(v) for v in data["series"][0]["raw"]]
        series.append((name, np.asarray(raw), [list(a) for a in annotations[name].values()]))
    return series


# --- runs ------------------------------------------------------------------------------------


def time_detectors(detectors: dict[str, Detector], sizes: Sequence[int]) -> None:
    print("\n## time to segment (3 level shifts in log-normal noise)\n")
    print(f"| {'points':>9} | " + " | ".join(f"{name:>16}" for name in detectors) + " |")
    print(f"|{'-' * 11}|" + "|".join("-" * 18 for _ in detectors) + "|")
    rng = np.random.default_rng(1)
    for n in sizes:
        values, truth = latency_steps(rng, n, 3, "normal")
        cells = []
        for name, detect in detectors.items():
            if n > RUPTURES_LIMITS.get(name, n):
                cells.append("not run")
                continue
            started = time.perf_counter()
            found = detect(values)
            seconds = time.perf_counter() - started
            hit = len(true_positives(set(truth), set(found), margin=max(MARGIN, n // 10_000)))
            cells.append(f"{seconds:8.3f} s {hit}/{len(truth)}")
        print(f"| {n:>9,} | " + " | ".join(f"{c:>16}" for c in cells) + " |")


def score_detectors(
    title: str,
    detectors: dict[str, Detector],
    series: Sequence[tuple[str, np.ndarray, list[list[int]]]],
    *,
    standardize: bool = False,
    raw: Sequence[str] = (),
    peers: Sequence[tuple[str, float, float, str]] = (),
) -> None:
    """Print the scores of `detectors` (those named in `raw` get the values unstandardised)
    and the `peers` rows (name, F1, cover, note) already scored elsewhere."""
    print(f"\n## {title} ({len(series)} series, margin {MARGIN})\n")
    print("| detector | mean F1 | mean cover | change points found / annotated (median) |")
    print("|---|---|---|---|")
    for name, detect in detectors.items():
        f1s, covers, counts = [], [], []
        for _, values, labels in series:
            signal = values
            if standardize and name not in raw:  # as TCPDBench feeds every method (R's scale())
                signal = (values - np.nanmean(values)) / np.nanstd(values)
            if name.startswith("ruptures"):
                # ruptures takes no NaN; on latency it gets the log, as observe uses
                signal = _filled(signal if standardize else np.log(signal))
            found = detect(signal)
            f1s.append(f_measure(labels, found))
            covers.append(covering(labels, found, values.size))
            counts.append((len(found), float(np.median([len(a) for a in labels]))))
        found_total = sum(c[0] for c in counts)
        truth_total = sum(c[1] for c in counts)
        print(
            f"| {name} | {np.mean(f1s):.3f} | {np.mean(covers):.3f} | "
            f"{found_total} / {truth_total:g} |"
        )
    for name, f1, cover, note in peers:
        print(f"| {name} | {f1:.3f} | {cover:.3f} | {note} |")


def tcpdbench_peers(
    path: Path, names: Sequence[str], methods: Sequence[str] = ("binseg", "pelt", "bocpd", "amoc")
) -> list[tuple[str, float, float, str]]:
    """TCPDBench's default-setting F1 and cover of `methods`, averaged over the series `names`
    (a failed run counts 0, as a method that reports nothing usable)."""
    scores = path / "analysis" / "output" / "scores"
    f1 = json.loads((scores / "default_f1_scores.json").read_text())
    cover = json.loads((scores / "default_cover_scores.json").read_text())
    rows = []
    for method in methods:
        f1s = [f1[name][method] for name in names]
        covers = [cover[name][method] for name in names]
        failed = sum(value is None for value in f1s)
        rows.append(
            (
                f"TCPDBench default {method}",
                float(np.mean([value or 0.0 for value in f1s])),
                float(np.mean([value or 0.0 for value in covers])),
                f"as reported; failed on {failed} series" if failed else "as reported",
            )
        )
    return rows


def _filled(values: np.ndarray) -> np.ndarray:
    """ruptures takes no NaN: carry the last observation forward (observe skips them)."""
    if not np.isnan(values).any():
        return values
    index = np.where(np.isnan(values), 0, np.arange(values.size))
    np.maximum.accumulate(index, out=index)
    filled = values[index]
    return np.where(np.isnan(filled), np.nanmean(values), filled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 525_600, 1_000_000]
    )
    parser.add_argument("--tcpd", type=Path, help="a checkout of the TCPD repository")
    parser.add_argument(
        "--tcpdbench", type=Path, help="a checkout of TCPDBench, for its reported scores"
    )
    parser.add_argument("--no-ruptures", action="store_true", help="observe alone")
    args = parser.parse_args()

    detectors: dict[str, Detector] = {"observe": observe_detector}
    if not args.no_ruptures:
        detectors["ruptures Pelt"] = ruptures_detector("Pelt")
        detectors["ruptures Binseg"] = ruptures_detector("Binseg")
    time_detectors(detectors, args.sizes)
    synthetic = [(name, values, [truth]) for name, values, truth in synthetic_series()]
    score_detectors("synthetic latency series", detectors | {"zero": zero_detector}, synthetic)
    if args.tcpd:
        series = tcpd_series(args.tcpd)
        peers = tcpdbench_peers(args.tcpdbench, [s[0] for s in series]) if args.tcpdbench else []
        raw = "observe, raw values"
        score_detectors(
            "TCPD, human annotations",
            detectors | {raw: observe_detector, "zero": zero_detector},
            series,
            standardize=True,
            raw=[raw],
            peers=peers,
        )


if __name__ == "__main__":
    main()
