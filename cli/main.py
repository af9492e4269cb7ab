"""The `custody` command's composition root: `main(argv) -> int`, errors to exit codes here."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from custody.errors import CustodyError
from custody.note import format_signer, format_vkey, generate_signer
from storage import StorageError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy import Engine

# The service's modules (FastAPI, SQLAlchemy, boto3) load inside the commands that use them:
# `custody verify-bundle` on a court's laptop starts in a fraction of the time.

app = typer.Typer(help="Custody: evidence integrity and chain of custody.", no_args_is_help=True)
admin = typer.Typer(help="Administer users (acts on the configured database directly).")
app.add_typer(admin, name="admin")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes (one integrates at a time, by lease)")
    ] = 1,
) -> None:
    """Run the API (embedded default: SQLite + local store under CUSTODY_DATA_DIR)."""
    import uvicorn

    from api.app import create_app
    from api.keys import load_signer
    from api.settings import Settings

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.database_url is None and settings.storage_backend == "local":
        logging.getLogger("custody").warning(
            "EMBEDDED MODE: database, evidence and keys are local files under %s. "
            "Back this directory up; use PostgreSQL and S3 object lock in production.",
            settings.data_dir.resolve(),
        )
    if workers == 1:
        uvicorn.run(
            create_app(settings, settle_heap=True),
            host=host,
            port=port,
            log_level="info",
            access_log=settings.access_log,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        return
    # Settle the signing key here, so the workers read one key rather than race to make it.
    load_signer(settings)
    uvicorn.run(
        "cli.main:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=settings.access_log,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def app_from_environment() -> FastAPI:
    """The app of one `serve --workers` process, configured like its parent (CUSTODY_*)."""
    from api.app import create_app
    from api.settings import Settings

    return create_app(Settings(), settle_heap=True)


@admin.command("create-user")
def create_user(
    name: Annotated[str, typer.Option(help="display name (kept in the database only)")],
    role: Annotated[str, typer.Option(help="admin, lawyer, field or auditor")] = "admin",
    case: Annotated[
        list[str] | None, typer.Option(help="a case the user is a member of (repeatable)")
    ] = None,
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="the token expires after this many days")
    ] = None,
) -> None:
    """Create a user and print its API token once, alone on the last line."""
    from api.auth import ROLES
    from api.auth import create_user as create

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    engine = _engine()
    now = datetime.now(UTC)
    expires = now + timedelta(days=expires_days) if expires_days else None
    try:
        made = create(engine, name=name, role=role, now=now, cases=case or [], expires_at=expires)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--case") from exc
    finally:
        engine.dispose()
    typer.echo(f"Created user {made.user_id} (pseudonym {made.pseudonym}) with role {role}.")
    typer.echo("Its API token follows. It is shown only this once; store it safely.")
    typer.echo(made.issued.token)


def _engine() -> Engine:
    """The configured database, migrated (the admin commands act on it directly)."""
    from api.database import build_engine, migrate
    from api.settings import Settings

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = build_engine(settings.resolved_database_url)
    migrate(engine)
    return engine


@admin.command("create-token")
def create_token(
    user: Annotated[str, typer.Option(help="the user's id (see list-users)")],
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="the token expires after this many days")
    ] = None,
    label: Annotated[str | None, typer.Option(help="a note on what the token is for")] = None,
) -> None:
    """Issue a further token for a user and print it once, alone on the last line."""
    from api.auth import issue_token

    engine = _engine()
    now = datetime.now(UTC)
    expires = now + timedelta(days=expires_days) if expires_days else None
    try:
        issued = issue_token(engine, user_id=user, now=now, expires_at=expires, label=label)
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="--user") from exc
    finally:
        engine.dispose()
    typer.echo(f"Created token {issued.token_id} for user {user}.")
    typer.echo("It follows. It is shown only this once; store it safely.")
    typer.echo(issued.token)


@admin.command("revoke-token")
def revoke_token_command(
    token_id: Annotated[str, typer.Argument(help="the token's id (see list-users)")],
) -> None:
    """Revoke a token: it is refused from then on."""
    from api.auth import revoke_token

    engine = _engine()
    try:
        revoke_token(engine, token_id, now=datetime.now(UTC))
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="TOKEN_ID") from exc
    finally:
        engine.dispose()
    typer.echo(f"Revoked token {token_id}.")


@admin.command("list-users")
def list_users_command() -> None:
    """Every user with their tokens' ids and dates (never a token)."""
    from api.auth import list_users

    engine = _engine()
    records = list_users(engine)
    engine.dispose()
    for record in records:
        user = record.user
        typer.echo(f"{user.id}\t{user.role}\t{user.pseudonym}\t{user.name}")
        for token in record.tokens:
            state = "revoked " + token.revoked_at.isoformat() if token.revoked_at else "active"
            expires = token.expires_at.isoformat() if token.expires_at else "never"
            typer.echo(
                f"  token {token.id}\tcreated {token.created_at.isoformat()}"
                f"\texpires {expires}\t{state}"
            )


@app.command()
def audit(
    source: Annotated[
        str, typer.Argument(help="store directory, s3://bucket/prefix or http(s)://")
    ],
    vkey: Annotated[str, typer.Option(help="the log's verifier key, or a file holding it")],
    state: Annotated[Path | None, typer.Option(help="last-seen checkpoint file")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print a JSON report")] = False,
    log_prefix: Annotated[str, typer.Option(help="the log's prefix in the store")] = "log/",
    endpoint_url: Annotated[str | None, typer.Option(help="S3 endpoint (s3:// sources)")] = None,
    region: Annotated[str, typer.Option(help="S3 region")] = "us-east-1",
    token: Annotated[
        str | None, typer.Option(envvar="CUSTODY_TOKEN", help="API token (http sources)")
    ] = None,
    originals: Annotated[
        bool,
        typer.Option(
            help="re-hash every original, metadata sidecar and sharing copy the log names"
        ),
    ] = True,
    timestamps: Annotated[
        bool, typer.Option(help="verify every RFC 3161 token over every checkpoint")
    ] = True,
    tsa_ca: Annotated[
        list[Path] | None,
        typer.Option(help="PEM file of TSA root certificates to trust (repeatable)"),
    ] = None,
) -> int:
    """Verify the whole log from its stored objects alone; exit 0 all good, 1 any failure,
    2 a usage error (bad key, source or state file)."""
    from cli.audit import report_json, report_text, run_audit

    report, state_path = run_audit(
        source,
        vkey=vkey,
        state=state,
        log_prefix=log_prefix,
        endpoint_url=endpoint_url,
        region=region,
        token=token,
        check_originals=originals,
        check_timestamps=timestamps,
        tsa_ca=tsa_ca,
    )
    typer.echo(report_json(report, state_path) if json_output else report_text(report, state_path))
    return EXIT_OK if report.ok else EXIT_FAILURE


@app.command("verify-receipt")
def verify_receipt_command(
    receipt: Annotated[
        Path, typer.Argument(help="the receipt: tlog-proof text, or the service's JSON")
    ],
    file: Annotated[Path | None, typer.Argument(help="the evidence file it was issued for")] = None,
    vkey: Annotated[str, typer.Option(help="the log's verifier key, or a file holding it")] = "",
    tsa_ca: Annotated[
        list[Path] | None,
        typer.Option(help="PEM file of TSA root certificates to trust (repeatable)"),
    ] = None,
) -> int:
    """Check a receipt offline: the file's hash, the inclusion proof, the checkpoint signature,
    and each RFC 3161 token over the checkpoint ("token valid"), separately from whether its
    TSA's root is among the --tsa-ca anchors ("TSA trusted"). Exit 1 if any token is invalid."""
    from cli.audit import run_verify_receipt

    if not vkey:
        raise typer.BadParameter("the log's verifier key is required", param_hint="--vkey")
    result = run_verify_receipt(receipt, file, vkey=vkey, tsa_ca=tsa_ca)
    typer.echo(json.dumps(result, indent=2))
    for stamp in result["timestamps"]:
        if not stamp["token_valid"]:
            typer.echo(f"timestamp from {stamp['tsa']}: INVALID: {stamp['reason']}", err=True)
        else:
            trust = "TSA trusted" if stamp["tsa_trusted"] else "TSA NOT trusted (root not given)"
            typer.echo(
                f"timestamp from {stamp['tsa']}: token valid, {stamp['time']}; {trust}", err=True
            )
    if result["timestamps"]:
        typer.echo(f"trusted time: {result['trusted_time'] or 'none (no trusted token)'}", err=True)
    return EXIT_OK if result["ok"] else EXIT_FAILURE


@app.command("verify-bundle")
def verify_bundle_command(
    bag: Annotated[Path, typer.Argument(help="the exhibit bundle: its .zip or the unzipped bag")],
    vkey: Annotated[
        str | None, typer.Option(help="the log's verifier key, or a file holding it")
    ] = None,
    tsa_ca: Annotated[
        list[Path] | None,
        typer.Option(help="PEM file of TSA root certificates to trust (repeatable)"),
    ] = None,
    org_key: Annotated[
        Path | None, typer.Option(help="the organisation's public key (PEM) to check against")
    ] = None,
    original: Annotated[
        list[Path] | None,
        typer.Option(help="an original you hold: proves its sharing copy's content (repeatable)"),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print a JSON report")] = False,
) -> int:
    """Verify an exhibit bundle offline: every file's hashes, the organisation's signature,
    the custody log's proofs, each exhibit's entries and RFC 3161 timestamps; trust in the
    keys is reported apart. Exit 0 all good, 1 any failure, 2 a usage error."""
    from cli.bundle import report_json, report_text, run_verify_bundle

    report = run_verify_bundle(
        bag, vkey=vkey, tsa_ca=tsa_ca or [], org_key=org_key, originals=original or []
    )
    typer.echo(report_json(report) if json_output else report_text(report))
    return EXIT_OK if report.ok else EXIT_FAILURE


@admin.command("rebuild-index")
def rebuild_index_command(
    into: Annotated[str, typer.Option(help="URL of an empty database to fill from the log")],
) -> int:
    """Rebuild the evidence and event tables from the log in the object store."""
    from api.database import build_engine, migrate
    from api.keys import load_signer
    from api.logstore import LogStore
    from api.rebuild import rebuild_index
    from api.settings import Settings
    from api.stores import build_store

    settings = Settings()
    target = build_engine(into)
    migrate(target)
    store = build_store(settings)
    verifier = load_signer(settings).verifier()
    report = rebuild_index(target, LogStore(store, settings.log_prefix), verifier)
    target.dispose()
    typer.echo(
        f"Rebuilt {report.events} events and {report.evidence} originals (log size {report.size})."
    )
    return EXIT_OK


@admin.command("new-log-key")
def new_log_key(
    origin: Annotated[str, typer.Option(help="the log's origin, e.g. custody.your-org.example")],
) -> None:
    """Print a new log signing key (for CUSTODY_LOG_PRIVATE_KEY), then its verifier key."""
    signer = generate_signer(origin)
    typer.echo(format_signer(signer))
    typer.echo(format_vkey(signer.verifier()))


@admin.command("show-vkey")
def show_vkey() -> None:
    """Print the configured log's verifier key (what auditors pass to --vkey)."""
    from api.keys import load_signer
    from api.settings import Settings

    typer.echo(format_vkey(load_signer(Settings()).verifier()))


@admin.command("check-index")
def check_index_command() -> int:
    """Compare the database's events with the log in the object store; name every difference."""
    from api.database import build_engine
    from api.keys import load_signer
    from api.logstore import LogStore
    from api.rebuild import compare_index
    from api.settings import Settings
    from api.stores import build_store

    settings = Settings()
    engine = build_engine(settings.resolved_database_url)
    store = build_store(settings)
    verifier = load_signer(settings).verifier()
    report = compare_index(engine, LogStore(store, settings.log_prefix), verifier)
    engine.dispose()
    for difference in report.differences:
        typer.echo(f"DIFF {difference}")
    typer.echo(f"Compared {report.events} entries: {len(report.differences)} difference(s).")
    return EXIT_OK if not report.differences else EXIT_FAILURE


@app.command()
def openapi() -> None:
    """Print the OpenAPI document (the committed openapi.yaml) as YAML."""
    import yaml

    from api.app import create_app
    from api.settings import Settings

    spec = create_app(Settings()).openapi()
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
    except (CustodyError, StorageError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return EXIT_FAILURE
    return result if isinstance(result, int) else EXIT_OK


def run() -> None:
    sys.exit(main())
