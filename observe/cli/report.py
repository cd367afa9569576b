"""`observe report`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from observe.cli.base import (
    JsonOption,
    app,
    err,
    fail,
    load_settings,
    open_database,
    out,
    print_json,
)
from observe.config import Settings
from observe.db.engine import Database

# --- weekly reports ----------------------------------------------------------------------------


@app.command()
def report(
    week: str = typer.Option(
        None, "--week", help="ISO week such as 2026-W47 (default: the last complete week)."
    ),
    model: list[str] = typer.Option(
        None, "--model", help="Only this model's report (repeatable); default: all and a summary."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Directory for <week>/<model>.html and .json (default: OBSERVE_REPORT_DIR, "
        "else <data dir>/reports).",
    ),
    deliver: bool = typer.Option(
        False,
        "--deliver",
        help="Also send the week through the configured channels (webhook, email), again if "
        "it was sent before.",
    ),
    rerender: bool = typer.Option(
        False, "--rerender", help="Build the reports again and replace the stored ones."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write a week's reports now: each model's and a summary, as self-contained HTML and JSON.
    Reports already stored for the week are reused (--rerender builds them again)."""
    from observe.pipeline import reports as report_pipeline
    from observe.pipeline.weeks import Week, last_complete_week

    now = dt.datetime.now(dt.UTC)
    try:
        chosen = Week.parse(week) if week else last_complete_week(now)
    except ValueError as error:
        raise fail(f"--week: {error}", 2) from None
    try:
        report_pipeline.check_week_is_over(chosen, now)
    except report_pipeline.WeekNotOver as error:
        raise fail(str(error), 2) from None
    if deliver and model:
        raise fail("--deliver sends the whole week: leave out --model", 2)
    settings = load_settings()
    folder = (out or settings.report_directory or Path("reports")) / chosen.name
    db = open_database(settings)
    try:
        result = report_pipeline.write_week(
            db, chosen, settings=settings, now=now, models=model or None, rerender=rerender
        )
    except LookupError as error:
        raise fail(str(error.args[0])) from None
    files = _write_report_files(folder, result.reports)
    outcome = _deliver_week(db, settings, chosen, now) if deliver else None
    if as_json:
        print_json(_report_json(chosen, result, files, outcome))
    else:
        _print_reports(chosen, result, files, outcome)
    if outcome is not None and (outcome.retrying or outcome.failed):
        raise typer.Exit(1)


def _write_report_files(folder: Path, reports: list[Any]) -> dict[int, list[Path]]:
    from observe.pipeline.delivery import write_report_files

    try:
        return {r.id: write_report_files(folder, r.content or {}) for r in reports}
    except OSError as error:
        raise fail(f"cannot write the reports to {folder}: {error}") from None


def _deliver_week(db: Database, settings: Settings, week: Any, now: dt.datetime) -> Any:
    from observe.pipeline.delivery import Deliverer
    from observe.pipeline.reports import queue_week_delivery

    deliverer = Deliverer.from_settings(db, settings)
    if not deliverer.channel_names:
        raise fail(
            "no delivery channel is configured (OBSERVE_REPORT_DIR, OBSERVE_WEBHOOK_URL, "
            "OBSERVE_SMTP_HOST)"
        )
    queue_week_delivery(db, week, deliverer.channel_names, now=now, requeue=True)
    return deliverer.deliver_due(now=now)


def _report_json(week: Any, result: Any, files: dict[int, list[Path]], outcome: Any) -> Any:
    deliveries = None
    if outcome is not None:
        deliveries = [{"channel": d.channel, "status": "sent"} for d in outcome.sent] + [
            {"channel": d.channel, "status": status, "error": error}
            for status, items in (("retrying", outcome.retrying), ("failed", outcome.failed))
            for d, error in items
        ]
    return {
        "week": week.name,
        "window": {"start": week.start, "end": week.end},
        "num_written": result.num_written,
        "reports": [
            {
                "id": r.id,
                "kind": r.kind,
                "model": r.model,
                "num_needs_attention": r.num_needs_attention,
                "files": [str(path) for path in files[r.id]],
            }
            for r in result.reports
        ],
        "deliveries": deliveries,
    }


def _print_reports(week: Any, result: Any, files: dict[int, list[Path]], outcome: Any) -> None:
    before = len(result.reports) - result.num_written
    out.print(
        f"[bold]Week {week.name}[/bold] ({week.start:%Y-%m-%d} – {week.end:%Y-%m-%d}): "
        f"{result.num_written} written now, {before} stored before"
    )
    table = Table("report", "needs attention", "files")
    for r in result.reports:
        names = " ".join(path.name for path in reversed(files[r.id]))
        table.add_row(r.model or "summary", str(r.num_needs_attention), names)
    out.print(table)
    folders = sorted({str(path.parent) for paths in files.values() for path in paths})
    for folder in folders:
        out.print(f"in {folder}", soft_wrap=True)
    if outcome is None:
        return
    for d in outcome.sent:
        out.print(f"delivered via {d.channel}")
    for status, items in (("will be retried", outcome.retrying), ("failed", outcome.failed)):
        for d, error in items:
            err.print(f"[red]delivery via {d.channel} {status}:[/red] {error}")
