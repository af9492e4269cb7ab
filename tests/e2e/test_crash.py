"""kill -9 under load: every acknowledged ingest survives, every receipt given stays valid.

The embedded deployment (SQLite + local store) is killed at seeded random moments while
clients ingest; after each restart on the same data directory the log must integrate
everything, audit clean, and agree with every receipt handed out before a kill.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from custody.checkpoint import open_checkpoint
from custody.merkle import verify_consistency
from custody.note import Verifier, parse_vkey
from custody.receipt import parse_receipt, verify_receipt
from tests.e2e.conftest import base_env
from tests.e2e.servers import Service, create_user, custody_cli, running_service
from tests.e2e.test_ingest import new_case

SEED = 20261128
KILLS = 3
CLIENTS = 4
RUN_SECONDS = (0.8, 2.5)  # how long the service ingests before each kill


@dataclass(frozen=True, slots=True)
class Acknowledged:
    sha256: str
    index: int
    event_id: str
    receipt: str | None  # only with a 201


@dataclass
class Ledger:
    """What the clients were told, across every run of the service."""

    acknowledged: list[Acknowledged] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, response: httpx.Response, sha256: str) -> None:
        with self.lock:
            if response.status_code not in (201, 202):
                self.unexpected.append(f"{response.status_code}: {response.text[:300]}")
                return
            body = response.json()
            assert body["sha256"] == sha256
            receipt = body["receipt"] if response.status_code == 201 else None
            self.acknowledged.append(
                Acknowledged(sha256, int(body["index"]), str(body["event_id"]), receipt)
            )


def ingest_until_refused(service: Service, case: str, ledger: Ledger) -> None:
    """Ingest small files until the server is gone; a request cut off is not acknowledged."""
    with service.client() as client:
        while True:
            data = os.urandom(64 + int.from_bytes(os.urandom(1), "big"))
            try:
                response = client.put(f"/v1/cases/{case}/evidence", content=data)
            except httpx.TransportError:
                return
            ledger.record(response, hashlib.sha256(data).hexdigest())


def run_and_kill(service: Service, case: str, ledger: Ledger, seconds: float) -> int:
    """Ingest from CLIENTS threads, SIGKILL the server after `seconds`; acks in this run."""
    before = len(ledger.acknowledged)
    clients = [
        threading.Thread(target=ingest_until_refused, args=(service, case, ledger))
        for _ in range(CLIENTS)
    ]
    for thread in clients:
        thread.start()
    time.sleep(seconds)
    os.kill(service.pid, signal.SIGKILL)
    for thread in clients:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a client kept running after the kill"
    return len(ledger.acknowledged) - before


def logged_events(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "custody.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM log_events").fetchone()
    conn.close()
    return int(count)


def wait_published(client: httpx.Client, verifier: Verifier, size: int) -> bytes:
    """The latest checkpoint once it covers `size` entries (the integrator catches up)."""
    deadline = time.monotonic() + 30
    while True:
        signed = client.get("/v1/log/checkpoint").content
        if open_checkpoint(signed, verifier).size >= size:
            return signed
        assert time.monotonic() < deadline, f"the log never reached {size} entries"
        time.sleep(0.1)


def test_kill_9_under_load_loses_no_acknowledged_ingest(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # A short lease: after kill -9 the restarted process waits for the dead one's lease.
    env = base_env(data_dir) | {"CUSTODY_LOG_LEASE_SECONDS": "1"}
    token = create_user(env)
    ledger = Ledger()
    case = ""
    for _ in range(KILLS):
        with running_service(env, data_dir, token=token) as service:
            if not case:
                with service.client() as client:
                    case = new_case(client, "Crash")
            acked = run_and_kill(service, case, ledger, rng.uniform(*RUN_SECONDS))
            assert acked > 0, "nothing was acknowledged before the kill"
    assert not ledger.unexpected, ledger.unexpected
    assert any(a.receipt for a in ledger.acknowledged), "no 201 with a receipt"

    with running_service(env, data_dir, token=token) as service, service.client() as client:
        vkey = client.get("/v1/log/vkey").text.strip()
        verifier = parse_vkey(vkey)
        size = logged_events(data_dir)
        final = open_checkpoint(wait_published(client, verifier, size), verifier)
        assert final.size == size
        check_acknowledged_are_logged(client, ledger)
        check_receipts_are_consistent(client, ledger, verifier, final.size, final.root)

    state = tmp_path / "audit-state.json"
    objects = str(data_dir / "objects")
    audited = custody_cli("audit", "--vkey", vkey, "--state", str(state), "--json", objects)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    report = json.loads(audited.stdout)
    assert (report["ok"], report["size"]) == (True, size)


def check_acknowledged_are_logged(client: httpx.Client, ledger: Ledger) -> None:
    for ack in ledger.acknowledged:
        described = client.get(f"/v1/evidence/{ack.sha256}")
        assert described.status_code == 200, f"acknowledged {ack.sha256} is gone"
        assert ack.index in [ingest["index"] for ingest in described.json()["ingests"]]
        entry = client.get(f"/v1/log/entries/{ack.index}")
        assert entry.status_code == 200, entry.text
        logged = json.loads(entry.content)
        assert (logged["id"], logged["subject"]["sha256"]) == (ack.event_id, ack.sha256)


def check_receipts_are_consistent(
    client: httpx.Client, ledger: Ledger, verifier: Verifier, size: int, root: bytes
) -> None:
    """Each receipt verifies for its file, and its checkpoint is a prefix of the final log."""
    sizes: dict[int, bytes] = {}
    for ack in ledger.acknowledged:
        if ack.receipt is None:
            continue
        verified = verify_receipt(
            parse_receipt(ack.receipt.encode()), verifier, file_sha256=ack.sha256
        )
        assert verified.index == ack.index
        sizes[verified.checkpoint.size] = verified.checkpoint.root
    for old, old_root in sorted(sizes.items()):
        if old == size:
            assert old_root == root
            continue
        proof = client.get("/v1/log/proofs/consistency", params={"old": old, "new": size})
        assert proof.status_code == 200, proof.text
        verify_consistency(
            old_size=old,
            new_size=size,
            old_root=old_root,
            new_root=root,
            proof=[base64.b64decode(h) for h in proof.json()["proof"]],
        )
