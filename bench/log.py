"""Custody log throughput: appends with receipts through the service, receipt latency, audit speed.

Each backend (`custody serve` on the embedded default, SQLite + local store; and on
PostgreSQL + SeaweedFS, both started here on loopback) is loaded at each level of
concurrent clients in turn. Every client uploads a small file, waits for its receipt and
uploads the next, so the offered load is clients / latency: with receipts that wait for the
next checkpoint (CUSTODY_LOG_BATCH_DELAY_MS apart), 32 clients cannot exceed about 32 / 0.05 s
whatever the server's speed, and a capacity figure needs more clients than that.

Prints, as its last line, one JSON object with:
- appends_per_s_embedded, appends_per_s_postgres_s3: ingests answered 201 with a receipt,
  per second, at the best load level whose receipt p99 met the 2 s target without errors
  (clients_*: that level; runs_*: every level's figures);
- receipt_latency_p99_ms: the slowest 1% of the requests of those two runs (upload to
  receipt), and receipt_latency_p99_ms_* per backend;
- server_cpu_ms_per_append_*, server_cores_*: CPU time (user + system) the server process
  and its workers used per append, and per second of the run (from /proc; null elsewhere):
  steadier than a rate on a shared machine, and they show whether the server was CPU-bound
  (one core is one Python process's limit, the GIL's);
- all_cpu_ms_per_append_*, cpu_bound_appends_per_s_*: the CPU per append of every party
  (the service, the S3 server, PostgreSQL's processes, the load generator; per party in
  runs_*) and the rate that would fill all `machine_cores` at that cost: what this machine
  allows at best with this software;
- audit_entries_per_s: `custody.audit.audit_log` over a log of AUDIT_ENTRIES entries in a
  local object store (built here first, as the integrator writes it: a checkpoint every
  AUDIT_CHECKPOINT_EVERY entries, each with a built-in TSA's token), checking every token as
  `custody audit` does by default; audit_entries_per_s_without_timestamps without them, and
  audit_tokens_per_s, the tokens checked per second of the difference: a log with more
  checkpoints per entry costs one token's check more per checkpoint;
- python_append_ceiling_per_s: leaf hash + Merkle frontier update in a tight loop, the same
  run, so the first figures read as a fraction of the compute limit.

    python bench/log.py [--seconds 10] [--clients 32,128] [--audit-entries 1000000]
                        [--audit-checkpoint-every 256] [--workers N] [--dir DIR]
                        [--backends embedded,postgres_s3]

The JSON also names the server configuration used: `custody serve --workers`, and the
log settings in effect (CUSTODY_LOG_BATCH_DELAY_MS and the others, or their defaults).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from api.settings import Settings
from bench.cpu import CpuMeter, named_cpu, own_cpu, tree_cpu
from bench.load import run_clients
from bench.log_audit import audit_rates, entry
from custody.merkle import MerkleFrontier, leaf_hash
from tests.e2e.servers import create_case, create_user, running_service, throwaway_database
from tests.servers import seaweedfs


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


LATENCY_TARGET_S = 2.0  # the receipt p99 target: a faster rate past it is not kept


@dataclass
class Run:
    """One load level against one running service."""

    clients: int
    load: Load
    rate: float
    seconds: float
    cpu: dict[str, float | None]  # CPU seconds per party during the run (bench.cpu)

    @property
    def p99(self) -> float:
        return p99(self.load.latencies)

    def meets_latency_target(self) -> bool:
        return not self.load.errors and self.p99 <= LATENCY_TARGET_S

    def cpu_ms_per_append(self, party: str) -> float | None:
        used = self.cpu.get(party)
        if used is None or not self.load.latencies:
            return None
        return round(used * 1000 / len(self.load.latencies), 2)

    def cores(self, party: str) -> float | None:
        used = self.cpu.get(party)
        return None if used is None else round(used / self.seconds, 2)

    def summary(self) -> dict[str, object]:
        return {
            "clients": self.clients,
            "appends_per_s": round(self.rate, 1),
            "receipt_latency_p99_ms": round(self.p99 * 1000, 1),
            "errors": self.load.errors,
            "cpu_ms_per_append": {party: self.cpu_ms_per_append(party) for party in self.cpu},
            "cores": {party: self.cores(party) for party in self.cpu},
        }


def measure(
    env: dict[str, str],
    data_dir: Path,
    levels: list[int],
    seconds: float,
    workers: int,
    *,
    s3_pid: int | None = None,
) -> list[Run]:
    """Run each load level in turn against one service; CPU is counted for the service,
    its S3 server (if started here), PostgreSQL (if used) and the load generator."""
    token = create_user(env, name="bench")
    runs = []
    with running_service(env, data_dir, token=token, workers=workers) as service:
        case = create_case(service.base_url, token)
        sources: dict[str, Callable[[], float | None]] = {"server": lambda: tree_cpu(service.pid)}
        if s3_pid is not None:
            sources["s3"] = lambda: tree_cpu(s3_pid)
        if "CUSTODY_DATABASE_URL" in env:
            sources["postgres"] = lambda: named_cpu("postgres")
        sources["load"] = own_cpu
        for clients in levels:
            load = Load(service.base_url, token, case)
            meter = CpuMeter(sources)
            meter.start()
            start = time.perf_counter()
            rate = load.run(clients, seconds)
            took = time.perf_counter() - start
            runs.append(Run(clients, load, rate, took, meter.stop()))
    return runs


def best(runs: list[Run]) -> Run:
    """The highest rate whose receipts met the latency target without errors (else the
    highest rate at all, its p99 showing why it did not qualify)."""
    kept = [run for run in runs if run.meets_latency_target()] or runs
    return max(kept, key=lambda run: run.rate)


@contextmanager
def postgres_s3_env(tmp: Path) -> Iterator[tuple[dict[str, str], int | None]]:
    """The service's settings for PostgreSQL + SeaweedFS, and the S3 server's PID."""
    with seaweedfs(tmp / "seaweedfs") as s3, throwaway_database() as url:
        yield (
            {
                "CUSTODY_DATABASE_URL": url,
                "CUSTODY_STORAGE_BACKEND": "s3",
                "CUSTODY_S3_ENDPOINT_URL": s3.endpoint,
                "CUSTODY_S3_ACCESS_KEY_ID": s3.access_key,
                "CUSTODY_S3_SECRET_ACCESS_KEY": s3.secret_key,
                "CUSTODY_S3_BUCKET": f"bench-{secrets.token_hex(4)}",
                "CUSTODY_S3_CREATE_BUCKET": "true",
                "CUSTODY_RETENTION_SECONDS": "600",
            },
            s3.pid,
        )


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


def client_levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",")]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"expected client counts like 32,128, not {text!r}")
    return levels


BACKENDS = ("embedded", "postgres_s3")


def backend_list(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(BACKENDS))
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(BACKENDS)}, not {text!r}")
    return chosen


def headline(runs: list[Run], backend: str) -> dict[str, object]:
    """The figures of the backend's best run (see `best`), under the backend's suffix."""
    run = best(runs)
    figures: dict[str, object] = {
        f"appends_per_s_{backend}": round(run.rate, 1),
        f"clients_{backend}": run.clients,
        f"receipt_latency_p99_ms_{backend}": round(run.p99 * 1000, 1),
        f"server_cpu_ms_per_append_{backend}": run.cpu_ms_per_append("server"),
        f"server_cores_{backend}": run.cores("server"),
    }
    # Every party's CPU per append, and the rate at which they would fill all the
    # machine's cores: what this machine allows at best, with this software.
    parts = [run.cpu_ms_per_append(party) for party in run.cpu]
    if None not in parts and parts:
        total = sum(p for p in parts if p is not None)
        figures[f"all_cpu_ms_per_append_{backend}"] = round(total, 2)
        figures[f"cpu_bound_appends_per_s_{backend}"] = round(
            (os.cpu_count() or 1) * 1000 / total, 1
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="per load level")
    parser.add_argument(
        "--clients",
        type=client_levels,
        default=[32, 128],
        help="load levels: concurrent clients, comma-separated (default 32,128)",
    )
    parser.add_argument("--audit-entries", type=int, default=1_000_000)
    parser.add_argument(
        "--audit-checkpoint-every",
        type=int,
        default=256,
        help="entries per checkpoint in the audited log (default: CUSTODY_LOG_BATCH_SIZE's "
        "default, the integrator's batches under sustained load)",
    )
    parser.add_argument("--workers", type=int, default=1, help="custody serve --workers")
    parser.add_argument(
        "--backends",
        type=backend_list,
        default=list(BACKENDS),
        help="which to load, comma-separated (default embedded,postgres_s3); a backend left out "
        "has no figures in the JSON",
    )
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
        runs: dict[str, list[Run]] = {}
        if "embedded" in args.backends:
            runs["embedded"] = measure(
                embedded_env, tmp / "embedded", args.clients, args.seconds, args.workers
            )
        if "postgres_s3" in args.backends:
            with postgres_s3_env(tmp) as (extra, s3_pid):
                env = {**base, "CUSTODY_DATA_DIR": str(tmp / "pg"), **extra}
                (tmp / "pg").mkdir()
                runs["postgres_s3"] = measure(
                    env, tmp / "pg", args.clients, args.seconds, args.workers, s3_pid=s3_pid
                )
        audit = audit_rates(args.audit_entries, args.audit_checkpoint_every, tmp)
    ceiling = python_ceiling()
    kept = [best(backend_runs) for backend_runs in runs.values()]
    every = [run for backend_runs in runs.values() for run in backend_runs]
    result = {
        "seconds_per_run": args.seconds,
        "clients": args.clients,
        "server": server_config(args.workers, base),
        "data_under": str(args.dir or tempfile.gettempdir()),
        "machine_cores": os.cpu_count(),
        **{k: v for backend, rs in runs.items() for k, v in headline(rs, backend).items()},
        "errors": sum(run.load.errors for run in every),
        "receipt_latency_p99_ms": round(
            p99([t for run in kept for t in run.load.latencies]) * 1000, 1
        ),
        **{f"runs_{backend}": [run.summary() for run in rs] for backend, rs in runs.items()},
        **audit,
        "python_append_ceiling_per_s": round(ceiling, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
