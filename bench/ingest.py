"""Ingest throughput and server memory: 1 GiB through the HTTP API vs. plain hashlib SHA-256.

Starts `custody serve` on loopback (embedded default: SQLite + local store in a temp dir),
uploads SIZE bytes with one streaming PUT, and compares the upload's MB/s with hashlib's
SHA-256 MB/s over the same bytes in the same run. Samples the server's RSS during the upload.
The last line printed is one JSON object.

    python bench/ingest.py [--size-mib 1024]
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
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.servers import create_case, create_user, running_service

BLOCK = 8 * 1024 * 1024
MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_mib(pid)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, rss_mib(self.pid))


def blocks(pattern: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(pattern)
    sent = 0
    while sent < size:
        n = min(len(pattern), size - sent)
        yield view[:n].tobytes() if n < len(pattern) else pattern
        sent += n


def hashlib_mb_s(pattern: bytes, size: int) -> float:
    start = time.perf_counter()
    h = hashlib.sha256()
    for block in blocks(pattern, size):
        h.update(block)
    return size / MIB / (time.perf_counter() - start)


def upload_mb_s(
    base_url: str, token: str, case: str, pattern: bytes, size: int
) -> tuple[float, dict[str, object]]:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    start = time.perf_counter()
    conn.putrequest("PUT", f"/v1/cases/{case}/evidence?filename=bench.bin")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    for block in blocks(pattern, size):
        conn.send(block)
    response = conn.getresponse()
    body = json.loads(response.read())
    elapsed = time.perf_counter() - start
    if response.status != 201:
        raise RuntimeError(f"upload failed: {response.status} {body}")
    return size / MIB / elapsed, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib * MIB
    pattern = os.urandom(BLOCK)
    with tempfile.TemporaryDirectory(prefix="custody-bench-") as tmp:
        data_dir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
        env["CUSTODY_DATA_DIR"] = str(data_dir)
        token = create_user(env, name="bench")
        with running_service(env, data_dir, token=token) as service:
            case = create_case(service.base_url, token)
            baseline_rss = rss_mib(service.pid)
            sampler = RssSampler(service.pid)
            sampler.start()
            upload, body = upload_mb_s(service.base_url, token, case, pattern, size)
            sampler.stop.set()
            sampler.join()
            hashed = hashlib_mb_s(pattern, size)
    expected = hashlib.sha256()
    for block in blocks(pattern, size):
        expected.update(block)
    if body["sha256"] != expected.hexdigest():
        raise RuntimeError("server digest differs from the bytes sent")
    result = {
        "size_mib": args.size_mib,
        "upload_mb_s": round(upload, 1),
        "hashlib_sha256_mb_s": round(hashed, 1),
        "throughput_ratio_vs_hashlib_sha256": round(upload / hashed, 3),
        "server_rss_baseline_mib": round(baseline_rss, 1),
        "server_rss_peak_mib": round(sampler.peak, 1),
        "server_rss_growth_mib": round(sampler.peak - baseline_rss, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
