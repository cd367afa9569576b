"""`observe collect gpu|prometheus`."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import typer

from observe.cli.base import collect_app, err, fail

# --- collect -----------------------------------------------------------------------------------

DEFAULT_SERVER_URL = "http://127.0.0.1:8080"
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "h": 3600.0}

ApiKeyOption = typer.Option(
    None,
    "--api-key",
    envvar="OBSERVE_API_KEY",
    help="A key with the ingest scope (default $OBSERVE_API_KEY).",
    show_envvar=False,
)
IntervalOption = typer.Option("10s", help="Time between polls: 500ms, 10s, 1m ...")
OnceOption = typer.Option(
    False, "--once", help="Take one reading (rates from two, 1 s apart), send it and exit."
)
DryRunOption = typer.Option(
    False, "--dry-run", help="Print the samples as JSON lines instead of sending them."
)
MaxBufferOption = typer.Option(
    100_000, min=1, help="Samples held while the server is unreachable; more are dropped."
)
FlushTimeoutOption = typer.Option(
    "30s", help="How long to keep trying to deliver held samples when stopping."
)


def _seconds(value: str, option: str) -> float:
    match = _SECONDS.match(value)
    seconds = float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)] if match else 0.0
    if seconds <= 0:
        raise fail(f"{option}: {value!r} is not a positive duration such as 500ms, 10s or 1m", 2)
    return seconds


@collect_app.command("gpu")
def collect_gpu(
    server_url: str = typer.Option(
        DEFAULT_SERVER_URL,
        "--server-url",
        "--url",
        envvar="OBSERVE_URL",
        help="The observe server (default $OBSERVE_URL or http://127.0.0.1:8080).",
        show_envvar=False,
    ),
    api_key: str = ApiKeyOption,
    host: str = typer.Option(None, help="Host name of the samples (default: this machine's)."),
    interval: str = IntervalOption,
    host_metrics: bool = typer.Option(
        True, "--host-metrics/--no-host-metrics", help="Also send host CPU and memory."
    ),
    once: bool = OnceOption,
    dry_run: bool = DryRunOption,
    max_buffer: int = MaxBufferOption,
    flush_timeout: str = FlushTimeoutOption,
) -> None:
    """Poll this machine's GPUs through NVML (and its CPU and memory) until stopped."""
    import socket

    from collectors.host import HostCollector
    from collectors.nvml import NvmlCollector, NvmlUnavailable

    host_name = host or socket.gethostname()
    gpus = NvmlCollector(host=host_name)
    try:
        gpus.open()
    except NvmlUnavailable as error:
        raise fail(str(error)) from None
    collectors: list[Any] = [gpus]
    if host_metrics:
        collectors.append(HostCollector(host=host_name))
        collectors[-1].open()
    what = f"{gpus.num_gpus} GPU(s){' and CPU/memory' if host_metrics else ''} of {host_name}"
    try:
        _collect(
            collectors,
            what,
            server_url,
            api_key,
            interval,
            once,
            dry_run,
            max_buffer,
            flush_timeout,
        )
    finally:
        for collector in collectors:
            collector.close()


@collect_app.command("prometheus")
def collect_prometheus(
    url: str = typer.Option(
        ..., "--url", help="Prometheus endpoint to scrape, e.g. http://node:9400/metrics."
    ),
    server_url: str = typer.Option(
        DEFAULT_SERVER_URL,
        "--server-url",
        envvar="OBSERVE_URL",
        help="The observe server (default $OBSERVE_URL or http://127.0.0.1:8080).",
        show_envvar=False,
    ),
    api_key: str = ApiKeyOption,
    host: str = typer.Option(
        None, help="Host name of every sample (default: Hostname label, else the target's)."
    ),
    interval: str = IntervalOption,
    keep_unknown: bool = typer.Option(
        False, "--keep-unknown", help="Also send metrics observe has no name for, as they are."
    ),
    timeout: str = typer.Option("5s", help="Scrape timeout."),
    once: bool = OnceOption,
    dry_run: bool = DryRunOption,
    max_buffer: int = MaxBufferOption,
    flush_timeout: str = FlushTimeoutOption,
) -> None:
    """Scrape a Prometheus endpoint (dcgm-exporter, node-exporter) until stopped."""
    from collectors.prometheus import PrometheusCollector, http_fetch

    if not url.startswith(("http://", "https://")):
        raise fail(f"--url: {url!r} is not an http:// or https:// URL", 2)
    fetch = http_fetch(url, timeout_seconds=_seconds(timeout, "--timeout"))
    collector = PrometheusCollector(url, host=host, keep_unknown=keep_unknown, fetch=fetch)
    _collect(
        [collector], url, server_url, api_key, interval, once, dry_run, max_buffer, flush_timeout
    )


def _collect(
    collectors: list[Any],
    what: str,
    server_url: str,
    api_key: str | None,
    interval: str,
    once: bool,
    dry_run: bool,
    max_buffer: int,
    flush_timeout: str,
) -> None:
    """Poll until SIGINT/SIGTERM (or once), sending through the SDK client; exit 1 when
    samples could not all be delivered."""
    import threading

    from observe.client import Client
    from observe.pipeline.polling import PollFailed, client_sink, poll_until_stopped

    interval_seconds = _seconds(interval, "--interval")
    flush_seconds = _seconds(flush_timeout, "--flush-timeout")
    if not dry_run and not server_url.startswith(("http://", "https://")):
        raise fail(f"--server-url: {server_url!r} is not an http:// or https:// URL", 2)
    stop = threading.Event()
    send: Callable[[list[dict[str, Any]]], None]
    if dry_run:
        client = None
        send = _print_samples
    else:
        client = Client(
            server_url, api_key=api_key, batch_size=min(1000, max_buffer), max_buffer=max_buffer
        )
        send = client_sink(client)
    when = "once" if once else f"every {interval_seconds:g} s until stopped (Ctrl-C)"
    err.print(f"reading {what} {when}; {'printing' if dry_run else f'sending to {server_url}'}")
    try:
        with _stop_on_signals(stop):
            stats = poll_until_stopped(
                collectors, send, interval_seconds=interval_seconds, stop=stop, once=once
            )
    except PollFailed as error:
        if client is not None:
            client.close(timeout=0)
        raise fail(str(error)) from None
    if client is None:
        return
    delivered = client.close(timeout=flush_seconds)
    sent = client.stats
    err.print(
        f"{stats.num_polls} polls ({stats.num_failed_polls} failed), {stats.num_samples} "
        f"samples: {sent.num_sent} delivered, {sent.num_dropped} dropped, "
        f"{sent.num_rejected} rejected"
        + (f"; last error: {sent.last_error}" if not delivered and sent.last_error else "")
    )
    if not delivered or sent.num_dropped or sent.num_rejected:
        raise typer.Exit(1)


def _print_samples(samples: list[dict[str, Any]]) -> None:
    for sample in samples:
        sys.stdout.write(orjson.dumps(sample, option=orjson.OPT_NAIVE_UTC).decode() + "\n")
    sys.stdout.flush()


@contextmanager
def _stop_on_signals(stop: Any) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop`, so the loop ends and held samples are flushed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
