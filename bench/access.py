"""Access logging: downloads/s of a small original with its `accessed` event, vs. without.

Starts `custody serve` on loopback (embedded default: SQLite + local store in a temp dir).
The baseline has to be the same server sending the same bytes from a route that logs no
read. The service has one such route: the raw tlog-tiles objects under `/log/`, which
authenticate the Bearer token exactly as `/v1/` does (tiles are auditors' material), then
read the object from the same object store. So the benchmark takes a full level-0 tile
(`/log/tile/0/000`, 8 KiB, immutable once the log has 256 entries), ingests those very
bytes as evidence, and times, in the same run and with the same client concurrency:
- logged: `GET /v1/evidence/{sha256}/content`: token, case membership, the `accessed`
  event committed to the log, then the bytes streamed from the store;
- plain: `GET /log/tile/0/000`: token and role, then the same bytes from the same store.
The difference is what need-to-know and the custody event cost per download. Runs
alternate (plain, logged, ...) so that drift in the machine's load falls on both.

Prints, as its last line, one JSON object with download_ratio_logged_vs_plain (target
>= 0.5), logged_downloads_per_s, plain_downloads_per_s, clients, seconds per route, bytes
per download and errors (any answer other than 200 with the expected bytes).

    python bench/access.py [--seconds 10] [--clients 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.load import run_clients
from tests.e2e.servers import create_case, create_user, running_service

TILE = "/log/tile/0/000"  # 256 hashes of 32 bytes (tlog-tiles), immutable once written
READY_SECONDS = 120.0  # for the log to reach 256 entries and publish that tile


class Downloads:
    """Clients GETting one path as fast as the service answers, for a fixed time."""

    def __init__(self, base_url: str, token: str, path: str, expected: bytes) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.addr = (host, int(port))
        self.headers = {"Authorization": f"Bearer {token}"}
        self.path = path
        self.expected = expected
        self.done = 0
        self.errors = 0
        self.elapsed = 0.0
        self._lock = threading.Lock()

    def client(self, deadline: float) -> None:
        conn = http.client.HTTPConnection(*self.addr, timeout=60)
        done = errors = 0
        while time.monotonic() < deadline:
            conn.request("GET", self.path, headers=self.headers)
            response = conn.getresponse()
            body = response.read()
            if response.status == 200 and body == self.expected:
                done += 1
            else:
                errors += 1
        conn.close()
        with self._lock:
            self.done += done
            self.errors += errors

    def run(self, clients: int, seconds: float) -> None:
        self.elapsed += run_clients(self.client, clients, seconds)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0


def full_tile(client: httpx.Client, case: str, clients: int) -> bytes:
    """Grow the log to 256 entries with logged reads of a seed file; the tile's bytes."""
    seed = os.urandom(4096)
    sha = client.put(f"/v1/cases/{case}/evidence", content=seed).json()["sha256"]
    warm = Downloads(str(client.base_url).rstrip("/"), "", f"/v1/evidence/{sha}/content", seed)
    warm.headers = dict(client.headers)
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        response = client.get(TILE)
        if response.status_code == 200:
            return response.content
        warm.run(clients, 1.0)
    raise RuntimeError(f"{TILE} was not published within {READY_SECONDS} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="per route, all rounds")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    with tempfile.TemporaryDirectory(prefix="custody-bench-access-") as name:
        data_dir = Path(name)
        env = {**base, "CUSTODY_DATA_DIR": str(data_dir)}
        token = create_user(env, name="bench")
        with running_service(env, data_dir, token=token) as service, service.client() as client:
            case = create_case(service.base_url, token)
            data = full_tile(client, case, args.clients)
            stored = client.put(f"/v1/cases/{case}/evidence", content=data)
            sha = stored.json()["sha256"]
            assert sha == hashlib.sha256(data).hexdigest()
            logged = Downloads(service.base_url, token, f"/v1/evidence/{sha}/content", data)
            plain = Downloads(service.base_url, token, TILE, data)
            per_run = args.seconds / args.rounds
            for _ in range(args.rounds):
                plain.run(args.clients, per_run)
                logged.run(args.clients, per_run)
    result = {
        "clients": args.clients,
        "seconds_per_route": args.seconds,
        "bytes_per_download": len(data),
        "logged_route": "GET /v1/evidence/{sha256}/content",
        "plain_route": f"GET {TILE}",
        "logged_downloads_per_s": round(logged.rate, 1),
        "plain_downloads_per_s": round(plain.rate, 1),
        "errors": logged.errors + plain.errors,
        "download_ratio_logged_vs_plain": round(logged.rate / plain.rate, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
