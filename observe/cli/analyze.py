"""`observe analyze latency|drift|skew`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from observe.cli.base import (
    JsonOption,
    _ms,
    _parse_option,
    _time_option,
    _window,
    analyze_app,
    err,
    fail,
    load_settings,
    open_database,
    out,
    print_json,
)
from observe.db.engine import Database

# --- analyze latency ---------------------------------------------------------------------------


@analyze_app.command("latency")
def analyze_latency(
    model: str = typer.Option(..., "--model", help="Model name."),
    version: list[str] = typer.Option(
        None, "--version", help="Only this version's series (repeatable)."
    ),
    start: str = typer.Option(
        None, help="Window start: RFC 3339, epoch seconds or -24h (default)."
    ),
    end: str = typer.Option(None, help="Window end (default now)."),
    percentile: list[float] = typer.Option(
        None, "--percentile", help="Percentile to analyse, 0-100 (repeatable; default 50, 95, 99)."
    ),
    bucket: str = typer.Option("5m", help="Bucket of the percentile series: 1m, 5m, 1h, ..."),
    as_json: bool = JsonOption,
) -> None:
    """Latency regressions: change points in the per-bucket percentile series of the model and
    each version, with the before/after test, the nearest change event and the slices that
    carry each."""
    from observe.api.params import parse_duration
    from observe.pipeline import latency_analysis

    start_at, end_at = _window(start, end)
    percentiles = percentile or [50.0, 95.0, 99.0]
    if any(not 0 < p < 100 for p in percentiles):
        raise fail("--percentile must be between 0 and 100, exclusive", 2)
    bucket_seconds = _parse_option(parse_duration, bucket, "--bucket")
    settings = load_settings()
    db = open_database(settings)
    try:
        with db.sessions() as session:
            regressions = latency_analysis.detect_regressions(
                session,
                model=model,
                start=start_at,
                end=end_at,
                bucket_seconds=bucket_seconds,
                percentiles=percentiles,
                model_versions=version or None,
                rollup_tags=settings.rollup_tags,
            )
    except ValueError as error:
        raise fail(str(error), 2) from None
    if as_json:
        print_json(
            {
                "model": model,
                "start": start_at,
                "end": end_at,
                "bucket_seconds": bucket_seconds,
                "percentiles": percentiles,
                "regressions": [r.as_dict() for r in regressions],
            }
        )
        return
    _print_regressions(model, start_at, end_at, regressions)


def _print_regressions(
    model: str, start: dt.datetime, end: dt.datetime, regressions: list[Any]
) -> None:
    out.print(f"{model}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC")
    if not regressions:
        out.print("no latency regressions")
        return
    table = Table(
        "onset (UTC)",
        "series",
        "pct",
        "before ms",
        "after ms",
        "x",
        "p",
        "status",
        "carried by",
        "event before",
    )
    for r in regressions:
        test = r.significance["quantile_test"]
        top = r.carriers[0] if r.carriers and r.carriers[0]["explained"] >= 0.5 else None
        event = r.event
        table.add_row(
            f"{r.onset_at:%Y-%m-%d %H:%M}",
            r.series,
            f"p{r.percentile:g}",
            _ms(r.before_ms),
            _ms(r.after_ms),
            f"{r.ratio:.2f}",
            f"{test['p_value']:.1e}",
            "open" if r.is_open else f"cleared {r.cleared_at:%H:%M}",
            f"{top['dimension']}={top['value']}" if top else "-",
            f"{event['kind']} {event.get('model_version') or ''} "
            f"({event['seconds_before_onset'] / 60:.0f} min)"
            if event
            else "-",
        )
    out.print(table)


# --- analyze drift / skew, import reference / whylogs --------------------------------------------


def _tests(values: list[str] | None) -> dict[str, str]:
    from observe.api.params import parse_feature_options

    return _parse_option(parse_feature_options, values, "--test", form="feature=value")


def _thresholds(values: list[str] | None) -> dict[str, float]:
    from observe.api.params import parse_thresholds

    return _parse_option(parse_thresholds, values, "--threshold", form="feature=value")


@analyze_app.command("drift")
def analyze_drift(
    model: str = typer.Option(..., "--model", help="Model name."),
    version: str = typer.Option(None, "--version", help="Model version (default: all)."),
    start: str = typer.Option(None, help="Window start (default 24 h before end)."),
    end: str = typer.Option(None, help="Window end (default now)."),
    baseline_start: str = typer.Option(None, help="Baseline window start."),
    baseline_end: str = typer.Option(None, help="Baseline window end."),
    reference: str = typer.Option(None, help="Reference data set name (default: the newest)."),
    test: list[str] = typer.Option(None, "--test", help="feature=test, e.g. amount=psi."),
    threshold: list[str] = typer.Option(
        None, "--threshold", help="feature=value, e.g. amount=0.2."
    ),
    drift_share: float = typer.Option(None, min=0.0, max=1.0, help="Share of drifted features."),
    html: Path = typer.Option(None, "--html", help="Also write an Evidently HTML report here."),
    as_json: bool = JsonOption,
) -> None:
    """Per-feature drift of a window against a reference data set or a baseline window."""
    from observe.pipeline import drift as drift_pipeline

    start_at, end_at = _window(start, end)
    query = drift_pipeline.DriftQuery(
        model=model,
        start=start_at,
        end=end_at,
        model_version=version,
        baseline_start=_time_option(baseline_start, "baseline-start"),
        baseline_end=_time_option(baseline_end, "baseline-end"),
        reference=reference,
        tests=_tests(test),
        thresholds=_thresholds(threshold),
        drift_share=drift_share,
    )
    settings = load_settings()
    db = open_database(settings)
    try:
        report = drift_pipeline.analyze_drift(
            db, query, settings=settings, now=dt.datetime.now(dt.UTC)
        )
    except drift_pipeline.DriftInputError as error:
        raise fail(str(error)) from None
    if html is not None:
        _write_evidently_html(db, report, html)
    if as_json:
        print_json(report.to_dict())
        return
    _print_drift(report)


def _write_evidently_html(db: Database, report: Any, path: Path) -> None:
    from observe.pipeline import evidently_export

    try:
        evidently_export.write_report(db, report, path)
    except evidently_export.ExportError as error:
        raise fail(str(error)) from None
    err.print(f"Evidently report written to {path}")


def _print_drift(report: Any) -> None:
    result = report.result
    baseline = report.baseline.to_dict()
    against = (
        f"reference {baseline['reference']['name']}"
        if baseline["kind"] == "reference"
        else f"{baseline['start']:%Y-%m-%d %H:%M} – {baseline['end']:%Y-%m-%d %H:%M}"
    )
    out.print(
        f"{report.model} {report.model_version or '(all versions)'}: "
        f"{report.start:%Y-%m-%d %H:%M} – {report.end:%Y-%m-%d %H:%M} UTC against {against} "
        f"({result.source}; {report.num_rows_current:,} vs {report.num_rows_baseline:,} rows)"
    )
    table = Table("feature", "kind", "test", "statistic", "p-value", "threshold", "drift")
    for f in result.features:
        table.add_row(
            f.feature,
            f.kind,
            f.test,
            f"{f.statistic:.4g}",
            "-" if f.p_value is None else f"{f.p_value:.4g}",
            f"{f.threshold:g}",
            "[red]yes[/red]" if f.drifted else "no",
        )
    out.print(table)
    for name, reason in result.skipped.items():
        out.print(f"skipped {name}: {reason}")
    verdict = "[red]drifted[/red]" if result.dataset_drifted else "not drifted"
    out.print(
        f"data set {verdict}: {result.num_drifted} of {len(result.features)} features "
        f"({result.share_drifted:.0%}, threshold {result.drift_share:.0%})"
    )


@analyze_app.command("skew")
def analyze_skew(
    model: str = typer.Option(..., "--model", help="Model name."),
    version: str = typer.Option(None, "--version", help="Model version (default: all)."),
    reference: str = typer.Option(None, help="Reference data set name (default: the newest)."),
    start: str = typer.Option(None, help="Window start (default 24 h before end)."),
    end: str = typer.Option(None, help="Window end (default now)."),
    join_key: str = typer.Option(
        None, help="request_id, or a feature naming the entity in both data sets."
    ),
    test: list[str] = typer.Option(None, "--test", help="feature=test, e.g. amount=psi."),
    threshold: list[str] = typer.Option(None, "--threshold", help="feature=value."),
    as_json: bool = JsonOption,
) -> None:
    """Training-serving skew: schema, distribution and feature-value skew."""
    from observe.pipeline.drift import DriftInputError
    from observe.pipeline.skew import SkewQuery
    from observe.pipeline.skew import analyze_skew as run_skew

    start_at, end_at = _window(start, end)
    query = SkewQuery(
        model=model,
        start=start_at,
        end=end_at,
        model_version=version,
        reference=reference,
        join_key=join_key,
        tests=_tests(test),
        thresholds=_thresholds(threshold),
    )
    settings = load_settings()
    db = open_database(settings)
    try:
        report = run_skew(db, query, settings=settings)
    except DriftInputError as error:
        raise fail(str(error)) from None
    if as_json:
        print_json(report.to_dict())
        return
    _print_skew(report)


def _print_skew(report: Any) -> None:
    result = report.result
    schema = result.schema
    out.print(
        f"{report.model} {report.model_version or '(all versions)'} against reference "
        f"{report.reference.name} ({report.num_rows_serving:,} serving rows)"
    )
    out.print(f"missing features: {', '.join(schema.missing) or 'none'}")
    out.print(f"extra features: {', '.join(schema.extra) or 'none'}")
    for name, types in schema.retyped.items():
        out.print(f"retyped {name}: {types['reference']} in training, {types['serving']} serving")
    for name, unseen in schema.unseen_categories.items():
        out.print(
            f"unseen categories of {name}: {unseen['num_values']} values, "
            f"{unseen['share']:.1%} of serving values ({', '.join(unseen['values'][:5])})"
        )
    _print_drift_table(result.distribution)
    if result.join_key:
        table = Table("feature", "joined", "mismatch rate", "mean |diff|", "max |diff|")
        for v in result.values:
            table.add_row(
                v.feature,
                f"{v.num_joined:,}",
                f"{v.mismatch_rate:.2%}",
                "-" if v.mean_abs_diff is None else f"{v.mean_abs_diff:.4g}",
                "-" if v.max_abs_diff is None else f"{v.max_abs_diff:.4g}",
            )
        out.print(f"feature values of {result.num_joined:,} entities joined on {result.join_key}:")
        out.print(table)


def _print_drift_table(result: Any) -> None:
    table = Table("feature", "kind", "test", "score", "threshold", "skew")
    for f in result.features:
        table.add_row(
            f.feature,
            f.kind,
            f.test,
            f"{f.score:.4g}",
            f"{f.threshold:g}",
            "[red]yes[/red]" if f.drifted else "no",
        )
    out.print(table)
