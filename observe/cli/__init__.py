"""The `observe` command line. OBSERVE_DATABASE_URL (or the default SQLite file) selects the
database; every command that prints results has --json.

One module per command group; importing them registers their commands on `app`.
"""

from observe.cli import (  # noqa: F401  (each module registers its commands)
    analyze,
    collect,
    database,
    diagnose,
    imports,
    keys,
    models,
    report,
    serve,
)
from observe.cli.base import app

__all__ = ["app", "main"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
