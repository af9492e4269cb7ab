"""Starting the real service (uvicorn via `custody serve`) for end-to-end tests."""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

CUSTODY = str(Path(sys.executable).parent / "custody")
POSTGRES_URL = os.environ.get(
    "CUSTODY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# Services listen on ports below Linux's ephemeral range (32768 and up, where outgoing
# connections take theirs; SeaweedFS's stay below it too, from 10000), each pytest-xdist worker
# in a block of its own: no client connection and no other worker's server can take a port
# between `free_port` and the server's bind. Within a block, ports are handed out in turn, so
# one not bound yet (a TSA meant to be down) is not handed out again soon after.
_PORT_BLOCKS_START = 6000
_PORT_BLOCK_SIZE = 500
_PORT_BLOCKS = 7  # 6000..9499: a serial run's block, then one per worker gw0..gw5


def _port_block() -> range | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"... under xdist
    slot = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    if slot >= _PORT_BLOCKS:
        return None
    start = _PORT_BLOCKS_START + slot * _PORT_BLOCK_SIZE
    return range(start, start + _PORT_BLOCK_SIZE)


_PORT_BLOCK = _port_block()
# A random start, so that two test runs at once rarely walk their blocks in step.
_port_turns = itertools.count(secrets.randbelow(_PORT_BLOCK_SIZE))


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on now, from this worker's block of ports."""
    if _PORT_BLOCK is not None:
        for _ in range(len(_PORT_BLOCK)):
            port = _PORT_BLOCK[next(_port_turns) % len(_PORT_BLOCK)]
            if _bindable(port):
                return port
    with socket.socket() as sock:  # a worker beyond the blocks, or its block all taken
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    base_url: str
    token: str
    env: dict[str, str]
    data_dir: Path
    pid: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.auth, timeout=60)


def create_user(env: dict[str, str], name: str = "E2E admin", role: str = "admin") -> str:
    """Run `custody admin create-user` and return the token on its last line."""
    out = subprocess.run(
        [CUSTODY, "admin", "create-user", "--name", name, "--role", role],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.rstrip("\n").splitlines()[-1]


@contextmanager
def running_service(
    env: dict[str, str], data_dir: Path, *, token: str | None = None, workers: int = 1
) -> Iterator[Service]:
    """Start `custody serve` on a free loopback port; stop it by its PID afterwards."""
    token = token or create_user(env)
    port = free_port()
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [CUSTODY, "serve", "--host", "127.0.0.1", "--port", str(port)]
            + (["--workers", str(workers)] if workers != 1 else []),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = Service(f"http://127.0.0.1:{port}", token, env, data_dir, proc.pid)
    try:
        _wait_ready(service, proc, log_path)
        yield service
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(service: Service, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{service.base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready: {log_path.read_text(errors='replace')[-3000:]}")


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test; dropped afterwards. Yields its SQLAlchemy URL."""
    name = f"custody_test_{secrets.token_hex(6)}"
    admin = libpq_url(POSTGRES_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def custody_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `custody` command and capture what it prints."""
    return subprocess.run(
        [CUSTODY, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env or dict(os.environ),
    )


def create_case(base_url: str, token: str, title: str = "bench") -> str:
    """Create a case over HTTP (for benchmarks, which use no test client) and return its id."""
    response = httpx.post(
        f"{base_url}/v1/cases",
        json={"title": title},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    response.raise_for_status()
    return str(response.json()["id"])
