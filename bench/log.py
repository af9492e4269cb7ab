"""Custody log throughput: appends with receipts through the service, receipt latency, audit speed.

Prints, as its last line, one JSON object with:
- appends_per_s_embedded, appends_per_s_postgres_s3: ingests answered 201 with a receipt,
  per second, by concurrent clients against `custody serve` (SQLite + local store; and
  PostgreSQL + SeaweedFS, both started here on loopback);
- receipt_latency_p99_ms: the slowest 1% of those requests (upload to receipt), all runs;
- server_cpu_ms_per_append_*, server_cores_*: CPU time (user + system) the server process
  and its workers used per append, and per second of the run (from /proc; null elsewhere):
  steadier than a rate on a shared machine, and they show whether the server was CPU-bound
  (one core is one Python process's limit, the GIL's);
- audit_entries_per_s: `custody.audit.audit_log` over a log of AUDIT_ENTRIES entries in a
  local object store (built here first);
- python_append_ceiling_per_s: leaf hash + Merkle frontier update in a tight loop, the same
  run, so the first figures read as a fraction of the compute limit.

    python bench/log.py [--seconds 10] [--clients 32] [--audit-entries 1000000] [--workers N]
                        [--dir DIR]

The JSON also names the server configuration used: `custody serve --workers`, and the
log settings in effect (CUSTODY_LOG_BATCH_DELAY_MS and the others, or their defaults).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.settings import Settings
from bench.load import run_clients
from cli.sources import StoreSource
from custody.audit import audit_log
from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.events import Subject, encode_entry, ingested
from custody.merkle import MerkleFrontier, leaf_hash
from custody.note import generate_signer
from custody.tiles import Bundle, Tile, bundle_path, integrate, tile_path
from storage.local import LocalObjectStore
from tests.e2e.servers import create_case, create_user, running_service, throwaway_database
from tests.servers import seaweedfs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(i: int) -> bytes:
    subject = Subject(sha256=os.urandom(32).hex(), size=i + 1, media_type="image/jpeg")
    return encode_entry(
        ingested(event_id=f"e_{i}", time=T0, actor="u_bench", case="c_bench", subject=subject)
    )


def python_ceiling(count: int = 200_000) -> float:
    entries = [entry(i) for i in range(1000)]
    frontier = MerkleFrontier.empty()
    start = time.perf_counter()
    for i in range(count):
        frontier = frontier.append([leaf_hash(entries[i % 1000])])
    frontier.root()
    return count / (time.perf_counter() - start)


class Load:
    """Clients uploading small files as fast as the service answers, for a fixed time."""

    def __init__(self, base_url: str, token: str, case: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.addr = (host, int(port))
        self.headers = {"Authorization": f"Bearer {token}"}
        self.path = f"/v1/cases/{case}/evidence"
        self.latencies: list[float] = []
        self.errors = 0
        self._lock = threading.Lock()

    def client(self, deadline: float) -> None:
        conn = http.client.HTTPConnection(*self.addr, timeout=60)
        while time.monotonic() < deadline:
            body = os.urandom(256)
            start = time.perf_counter()
            conn.request("PUT", self.path, body=body, headers=self.headers)
            response = conn.getresponse()
            payload = json.loads(response.read())
            elapsed = time.perf_counter() - start
            with self._lock:
                if response.status == 201 and payload.get("receipt"):
                    self.latencies.append(elapsed)
                else:
                    self.errors += 1
        conn.close()

    def run(self, clients: int, seconds: float) -> float:
        elapsed = run_clients(self.client, clients, seconds)  # before reading the count
        return len(self.latencies) / elapsed


@dataclass
class Measured:
    load: Load
    rate: float
    server_cpu: float | None  # CPU seconds of the server's processes during the load
    seconds: float

    def cpu_ms_per_append(self) -> float | None:
        if self.server_cpu is None or not self.load.latencies:
            return None
        return round(self.server_cpu * 1000 / len(self.load.latencies), 2)

    def cores(self) -> float | None:
        return None if self.server_cpu is None else round(self.server_cpu / self.seconds, 2)


def measure(
    env: dict[str, str], data_dir: Path, clients: int, seconds: float, workers: int
) -> Measured:
    token = create_user(env, name="bench")
    with running_service(env, data_dir, token=token, workers=workers) as service:
        load = Load(service.base_url, token, create_case(service.base_url, token))
        before, start = tree_cpu(service.pid), time.perf_counter()
        rate = load.run(clients, seconds)
        after, took = tree_cpu(service.pid), time.perf_counter() - start
    used = None if before is None or after is None else after - before
    return Measured(load, rate, used, took)


def tree_cpu(pid: int) -> float | None:
    """CPU seconds used so far by `pid` and its descendants, from Linux's /proc; else None."""
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").exists():
        return None
    parents: dict[int, list[int]] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += used.get(current, 0.0)
        todo.extend(parents.get(current, []))
    return total


@contextmanager
def postgres_s3_env(tmp: Path) -> Iterator[dict[str, str]]:
    with seaweedfs(tmp / "seaweedfs") as s3, throwaway_database() as url:
        yield {
            "CUSTODY_DATABASE_URL": url,
            "CUSTODY_STORAGE_BACKEND": "s3",
            "CUSTODY_S3_ENDPOINT_URL": s3.endpoint,
            "CUSTODY_S3_ACCESS_KEY_ID": s3.access_key,
            "CUSTODY_S3_SECRET_ACCESS_KEY": s3.secret_key,
            "CUSTODY_S3_BUCKET": f"bench-{secrets.token_hex(4)}",
            "CUSTODY_S3_CREATE_BUCKET": "true",
            "CUSTODY_RETENTION_SECONDS": "600",
        }


def build_log(root: Path, count: int) -> LocalObjectStore:
    """A log of `count` entries in a local store, written the way the integrator writes it."""
    store = LocalObjectStore(root)
    signer = generate_signer("bench.custody")
    size, objects = 0, {}

    def read(path: str) -> bytes:
        with store.open("log/" + path) as stream:
            return stream.read()

    batch = 65_536
    while size < count:
        n = min(batch, count - size)
        result = integrate(
            old_size=size,
            new_entries=[entry(size + i) for i in range(n)],
            read_tile=lambda t: read(tile_path(t)),
            read_bundle=lambda b: read(bundle_path(b)),
        )
        items: list[tuple[Tile | Bundle, bytes]] = [*result.tiles.items(), *result.bundles.items()]
        for obj, data in items:
            path = tile_path(obj) if isinstance(obj, Tile) else bundle_path(obj)
            objects[path] = data
            _put(store, "log/" + path, data, mutable=not obj.is_full)
        size = result.new_size
        signed = sign_checkpoint(Checkpoint("bench.custody", size, result.root), signer)
        _put(store, f"log/checkpoints/{size}", signed, mutable=False)
        _put(store, "log/checkpoint", signed, mutable=True)
    store.verifier = signer.verifier()  # type: ignore[attr-defined]
    return store


def _put(store: LocalObjectStore, key: str, data: bytes, *, mutable: bool) -> None:
    store.put(
        key,
        io.BytesIO(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        mutable=mutable,
    )


def audit_rate(count: int, tmp: Path) -> float:
    store = build_log(tmp / "audit-store", count)
    start = time.perf_counter()
    report = audit_log(StoreSource(store), store.verifier)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - start
    if not report.ok or report.entries != count:
        raise RuntimeError(f"audit of the bench log failed: {report.failures[:3]}")
    return count / elapsed


def server_config(workers: int, env: dict[str, str]) -> dict[str, object]:
    """What the measured servers ran with: their worker count and log settings."""
    config: dict[str, object] = {"workers": workers}
    for name in ("log_batch_size", "log_batch_delay_ms", "log_poll_ms"):
        default = Settings.model_fields[name].default
        config[name] = int(env.get(f"CUSTODY_{name.upper()}", default))
    return config


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--audit-entries", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1, help="custody serve --workers")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the servers keep their data (a fresh directory is made in it and removed "
        "after; default: the system's temp directory): measure on the disk you deploy to",
    )
    args = parser.parse_args()
    # The log's tuning knobs pass through, and are reported; everything else is the bench's.
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CUSTODY_") or k.startswith(("CUSTODY_LOG_BATCH", "CUSTODY_LOG_POLL"))
    }
    with tempfile.TemporaryDirectory(prefix="custody-bench-log-", dir=args.dir) as name:
        tmp = Path(name)
        embedded_env = {**base, "CUSTODY_DATA_DIR": str(tmp / "embedded")}
        embedded = measure(embedded_env, tmp / "embedded", args.clients, args.seconds, args.workers)
        with postgres_s3_env(tmp) as extra:
            env = {**base, "CUSTODY_DATA_DIR": str(tmp / "pg"), **extra}
            (tmp / "pg").mkdir()
            pg = measure(env, tmp / "pg", args.clients, args.seconds, args.workers)
        audit = audit_rate(args.audit_entries, tmp)
    ceiling = python_ceiling()
    result = {
        "seconds_per_run": args.seconds,
        "clients": args.clients,
        "server": server_config(args.workers, base),
        "data_under": str(args.dir or tempfile.gettempdir()),
        "appends_per_s_embedded": round(embedded.rate, 1),
        "appends_per_s_postgres_s3": round(pg.rate, 1),
        "errors": embedded.load.errors + pg.load.errors,
        "receipt_latency_p99_ms": round(p99(embedded.load.latencies + pg.load.latencies) * 1000, 1),
        "receipt_latency_p99_ms_embedded": round(p99(embedded.load.latencies) * 1000, 1),
        "receipt_latency_p99_ms_postgres_s3": round(p99(pg.load.latencies) * 1000, 1),
        "server_cpu_ms_per_append_embedded": embedded.cpu_ms_per_append(),
        "server_cpu_ms_per_append_postgres_s3": pg.cpu_ms_per_append(),
        "server_cores_embedded": embedded.cores(),
        "server_cores_postgres_s3": pg.cores(),
        "audit_entries": args.audit_entries,
        "audit_entries_per_s": round(audit, 1),
        "python_append_ceiling_per_s": round(ceiling, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
