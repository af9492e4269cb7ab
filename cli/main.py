"""The `custody` command's composition root: `main(argv) -> int`, errors to exit codes here."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
import uvicorn
import yaml

from api.app import create_app
from api.auth import ROLES
from api.auth import create_user as create
from api.database import build_engine, migrate
from api.settings import Settings
from custody.errors import CustodyError
from storage import StorageError

app = typer.Typer(help="Custody: evidence integrity and chain of custody.", no_args_is_help=True)
admin = typer.Typer(help="Administer users (acts on the configured database directly).")
app.add_typer(admin, name="admin")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Run the API (embedded default: SQLite + local store under CUSTODY_DATA_DIR)."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.database_url is None and settings.storage_backend == "local":
        logging.getLogger("custody").warning(
            "EMBEDDED MODE: database, evidence and keys are local files under %s. "
            "Back this directory up; use PostgreSQL and S3 object lock in production.",
            settings.data_dir.resolve(),
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@admin.command("create-user")
def create_user(
    name: Annotated[str, typer.Option(help="display name (kept in the database only)")],
    role: Annotated[str, typer.Option(help="admin, lawyer, field or auditor")] = "admin",
) -> None:
    """Create a user and print its API token once, alone on the last line."""
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = build_engine(settings.resolved_database_url)
    migrate(engine)
    user_id, token = create(engine, name=name, role=role, now=datetime.now(UTC))
    engine.dispose()
    typer.echo(f"Created user {user_id} with role {role}.")
    typer.echo("Its API token follows. It is shown only this once; store it safely.")
    typer.echo(token)


@app.command()
def openapi() -> None:
    """Print the OpenAPI document (the committed openapi.yaml) as YAML."""
    spec = create_app(Settings(), run_migrations=False).openapi()
    typer.echo(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), nl=False)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; map every error to an exit code in this one place."""
    try:
        result = app(args=argv, prog_name="custody", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        return EXIT_FAILURE
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        exc.show()  # type: ignore[attr-defined]
        return EXIT_USAGE
    except (CustodyError, StorageError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return EXIT_FAILURE
    return result if isinstance(result, int) else EXIT_OK


def run() -> None:
    sys.exit(main())
