"""Trusted time: the built-in RFC 3161 TSA's throughput, and what timestamps add to receipts.

Starts `custody serve` on loopback (embedded default: SQLite + local store in a temp dir).
Prints, as its last line, one JSON object with:
- tokens_per_s: granted TimeStampResps per second from `POST /tsa`, CLIENTS concurrent
  clients each POSTing distinct queries (a fresh imprint and nonce), every reply parsed and
  checked granted;
- ed25519_signs_per_s, ecdsa_p256_signs_per_s: `cryptography` signing a checkpoint-sized
  message (the log signs checkpoints with Ed25519, the TSA signs tokens with P-256), the
  same run, so the first figure reads as a fraction of the signing limit;
- appends_per_s_timestamps_on/_off, receipt_latency_p99_ms_timestamps_on/_off and
  added_receipt_p99_ms: bench/log.py's small-file ingest load with receipts, once with
  CUSTODY_TSA_URLS=builtin (each receipt waits for the token over its checkpoint) and once
  with CUSTODY_TSA_URLS empty.

    python bench/tsa.py [--seconds 10] [--clients 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from api.tsa import QUERY_TYPE
from bench.load import run_clients
from bench.log import Load, p99
from custody.checkpoint import Checkpoint, format_checkpoint
from custody.tsp import make_request, new_nonce, parse_response
from tests.e2e.servers import Service, create_case, create_user, running_service

SIGN_SECONDS = 3.0  # per signing loop


class TokenLoad:
    """Clients asking the built-in TSA for tokens as fast as it answers, for a fixed time."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.addr = (host, int(port))
        self.granted = 0
        self.errors = 0
        self._lock = threading.Lock()

    def client(self, deadline: float) -> None:
        conn = http.client.HTTPConnection(*self.addr, timeout=60)
        headers = {"Content-Type": QUERY_TYPE}
        while time.monotonic() < deadline:
            query = make_request(os.urandom(64), nonce=new_nonce())
            conn.request("POST", "/tsa", body=query, headers=headers)
            response = conn.getresponse()
            body = response.read()
            ok = response.status == 200 and parse_response(body).status == "granted"
            with self._lock:
                if ok:
                    self.granted += 1
                else:
                    self.errors += 1
        conn.close()

    def run(self, clients: int, seconds: float) -> float:
        elapsed = run_clients(self.client, clients, seconds)  # before reading the count
        return self.granted / elapsed


@dataclass(frozen=True)
class Receipts:
    rate: float  # appends answered 201 with a receipt, per second
    load: Load


def receipts(service: Service, clients: int, seconds: float, *, stamped: bool) -> Receipts:
    """bench/log.py's load; then one more ingest shows whether receipts carried tokens."""
    case = create_case(service.base_url, service.token)
    load = Load(service.base_url, service.token, case)
    rate = load.run(clients, seconds)
    response = httpx.put(
        f"{service.base_url}/v1/cases/{case}/evidence",
        content=os.urandom(256),
        headers=service.auth,
        timeout=60,
    )
    response.raise_for_status()
    tsas = [stamp["tsa"] for stamp in response.json()["timestamps"]]
    if tsas != (["builtin"] if stamped else []):
        raise RuntimeError(f"receipts carry timestamps from {tsas}; expected stamped={stamped}")
    return Receipts(rate, load)


def serve(base: dict[str, str], data_dir: Path, tsa_urls: str) -> tuple[dict[str, str], str]:
    data_dir.mkdir(parents=True)
    env = {**base, "CUSTODY_DATA_DIR": str(data_dir), "CUSTODY_TSA_URLS": tsa_urls}
    return env, create_user(env, name="bench")


def signs_per_s(sign: Callable[[bytes], object], message: bytes) -> float:
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < SIGN_SECONDS:
        for _ in range(100):
            sign(message)
        count += 100
    return count / (time.perf_counter() - start)


def signing_rates() -> dict[str, float]:
    # A checkpoint's signed body: origin, size, base64 root hash (C2SP tlog-checkpoint).
    message = format_checkpoint(Checkpoint("custody.bench", 123_456_789, os.urandom(32)))
    data = message.encode()
    ed = ed25519.Ed25519PrivateKey.generate()
    p256 = ec.generate_private_key(ec.SECP256R1())
    return {
        "ed25519_signs_per_s": round(signs_per_s(ed.sign, data), 1),
        "ecdsa_p256_signs_per_s": round(
            signs_per_s(lambda m: p256.sign(m, ec.ECDSA(hashes.SHA256())), data), 1
        ),
    }


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    with tempfile.TemporaryDirectory(prefix="custody-bench-tsa-") as name:
        tmp = Path(name)
        env, token = serve(base, tmp / "on", "builtin")
        with running_service(env, tmp / "on", token=token) as service:
            tokens = TokenLoad(service.base_url)
            tokens_rate = tokens.run(args.clients, args.seconds)
            on = receipts(service, args.clients, args.seconds, stamped=True)
        env, token = serve(base, tmp / "off", "")
        with running_service(env, tmp / "off", token=token) as service:
            off = receipts(service, args.clients, args.seconds, stamped=False)
    on_p99, off_p99 = p99(on.load.latencies), p99(off.load.latencies)
    result = {
        "seconds_per_run": args.seconds,
        "clients": args.clients,
        "tokens_per_s": round(tokens_rate, 1),
        "token_errors": tokens.errors,
        **signing_rates(),
        "appends_per_s_timestamps_on": round(on.rate, 1),
        "appends_per_s_timestamps_off": round(off.rate, 1),
        "receipt_latency_p50_ms_timestamps_on": ms(median(on.load.latencies)),
        "receipt_latency_p50_ms_timestamps_off": ms(median(off.load.latencies)),
        "receipt_latency_p99_ms_timestamps_on": ms(on_p99),
        "receipt_latency_p99_ms_timestamps_off": ms(off_p99),
        "added_receipt_p99_ms": ms(on_p99 - off_p99),
        "errors": on.load.errors + off.load.errors,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
