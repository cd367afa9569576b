"""What the benchmark scripts share: their Postgres databases, a real `observe serve`, timing
and the printed table.

Each script puts the repository root on `sys.path` before it imports this module, so that the
scripts run as `python benchmarks/NAME.py`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from observe.auth import Scope
from observe.db import migrate
from observe.db.engine import Database, create_database
from observe.pipeline.keys import create_key

HEALTHY_TIMEOUT_SECONDS = 60


class Postgres:
    """Databases of one benchmark run on the server of `admin_url`, dropped by `drop_all`."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.created: list[str] = []

    def fresh(self, name: str) -> str:
        """An empty database `name` (dropped first if it exists); returns its URL."""
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self._dsn(name)

    def fresh_upgraded(self, name: str) -> str:
        """A fresh database `name` with observe's schema at the newest migration."""
        url = self.fresh(name)
        upgraded_database(url).engine.dispose()
        return url

    def drop_all(self) -> None:
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            for name in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _dsn(self, database: str) -> str:
        url = self.admin_url.set(drivername="postgresql", database=database)
        return url.render_as_string(hide_password=False)


def upgraded_database(url: str) -> Database:
    """The database at `url`, its schema upgraded to the newest migration."""
    db = create_database(url)
    migrate.upgrade(db.engine)
    return db


def bare_copy_rate(url: str, table: str, columns: str, rows: Iterable[Sequence[Any]]) -> float:
    """Rows/s of a plain psycopg COPY of `rows` into `columns` of "bare", a copy of `table`
    without its id column, indexes and constraints: what the machine can write at all. Making
    the rows, when `rows` is a generator, is timed with the COPY."""
    with psycopg.connect(url) as connection:
        connection.execute(
            f"CREATE TABLE bare AS SELECT * FROM {table} WITH NO DATA; "
            "ALTER TABLE bare DROP COLUMN id"
        )
        connection.commit()
        num_rows = 0
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY bare ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                num_rows += 1
        connection.commit()
        return num_rows / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def observe_server(
    database_url: str, data_dir: Path, scopes: Sequence[Scope]
) -> Iterator[tuple[str, str]]:
    """A real `observe serve` (default worker count) on a database whose schema is already at
    the newest migration; yields its URL and a new API key with `scopes`."""
    db = create_database(database_url)
    key, _ = create_key(db.write_sessions, name="benchmark", scopes=list(scopes))
    db.engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "OBSERVE_DATABASE_URL": database_url,
        "OBSERVE_DATA_DIR": str(data_dir),
        "OBSERVE_PORT": str(port),
        "OBSERVE_LOG_LEVEL": "warning",
    }
    log = (data_dir / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", "from observe.cli import main; main()", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url, key
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"observe serve exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("observe serve did not become healthy")


def median_seconds(run: Callable[[], object], repeats: int, *, warm: bool = True) -> float:
    """The median wall time of `repeats` calls of `run`; with `warm`, after one untimed call
    that fills the caches, as a page looked at again would find them."""
    if warm:
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """`rows` under `headers`, in left-aligned columns separated by " | "."""
    table = [headers, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    for n, line in enumerate(table):
        print(" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * width for width in widths))
