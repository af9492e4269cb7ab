"""Exhibit bundles: export and verify 1,000 small exhibits, and one of 1 GiB.

Starts `custody serve` on loopback (embedded default: SQLite + local store in a temp dir),
ingests the exhibits (not timed), then times:
- export_s_1000: from `POST /v1/cases/{id}/exports` to the bag being ready (payload copied,
  1,000 `exported` entries logged and covered by a checkpoint, receipts, certificate, seal);
- verify_s_1000: `custody verify-bundle` over that bag, as a user runs it (a new process);
- for the 1 GiB exhibit, `custody verify-bundle` over its bag against `sha256sum` over the
  same exhibit file, alternating in the same run so the machine's load falls on both:
  verify_ratio_vs_sha256sum_1gib = verification time / hashing time (target <= 1.5).

Prints, as its last line, one JSON object with those figures and the raw times.

    python bench/bundle.py [--small 1000] [--large-mib 1024] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from tests.e2e.conftest import base_env
from tests.e2e.servers import Service, create_case, running_service

BIN = Path(sys.executable).parent
CHUNK = 1024 * 1024


def ingest_small(service: Service, case: str, count: int) -> list[str]:
    def one(number: int) -> str:
        with httpx.Client(base_url=service.base_url, headers=service.auth, timeout=120) as client:
            response = client.put(
                f"/v1/cases/{case}/evidence",
                params={"filename": f"note-{number}.bin"},
                content=os.urandom(4096),
            )
            response.raise_for_status()
            return str(response.json()["sha256"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def write_large(path: Path, mib: int) -> None:
    with path.open("wb") as file:
        for _ in range(mib):
            file.write(os.urandom(CHUNK))


def ingest_large(service: Service, case: str, path: Path) -> str:
    def body() -> Iterator[bytes]:
        with path.open("rb") as file:
            while chunk := file.read(CHUNK):
                yield chunk

    with httpx.Client(base_url=service.base_url, headers=service.auth, timeout=600) as client:
        response = client.put(
            f"/v1/cases/{case}/evidence",
            params={"filename": "interview.bin"},
            content=body(),
            headers={"Content-Length": str(path.stat().st_size)},
        )
        response.raise_for_status()
        return str(response.json()["sha256"])


def export(service: Service, case: str, items: list[str], into: Path) -> tuple[float, Path]:
    """Seconds from the request to a ready bag, and the downloaded bag."""
    with httpx.Client(base_url=service.base_url, headers=service.auth, timeout=600) as client:
        start = time.perf_counter()
        made = client.post(
            f"/v1/cases/{case}/exports", json={"items": items, "purpose": "Benchmark bundle"}
        )
        made.raise_for_status()
        export_id = made.json()["id"]
        while True:
            status = client.get(f"/v1/exports/{export_id}/status").json()
            if status["status"] != "building":
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        if status["status"] != "ready":
            raise RuntimeError(f"export failed: {status['error']}")
        path = into / status["filename"]
        with client.stream("GET", f"/v1/exports/{export_id}") as response, path.open("wb") as f:
            response.raise_for_status()
            for chunk in response.iter_bytes(CHUNK):
                f.write(chunk)
    return elapsed, path


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return elapsed


def verify(bag: Path) -> float:
    return timed([str(BIN / "custody"), "verify-bundle", str(bag), "--json"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="custody-bench-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        data_dir.mkdir()
        env = base_env(data_dir)
        large = work / "interview.bin"
        write_large(large, args.large_mib)
        with running_service(env, data_dir) as service:
            case = create_case(service.base_url, service.token, "bundle bench")
            small = ingest_small(service, case, args.small)
            export_small, bag_small = export(service, case, small, work)
            big = ingest_large(service, case, large)
            export_large, bag_large = export(service, case, [big], work)
        verify_small = verify(bag_small)
        verified, hashed = [], []
        for _ in range(args.rounds):
            hashed.append(timed(["sha256sum", str(large)]))
            verified.append(verify(bag_large))
        ratio = statistics.median(verified) / statistics.median(hashed)
        print(
            json.dumps(
                {
                    "export_s_1000": round(export_small, 2),
                    "verify_s_1000": round(verify_small, 2),
                    "verify_ratio_vs_sha256sum_1gib": round(ratio, 3),
                    "export_s_1gib": round(export_large, 2),
                    "verify_s_1gib": [round(v, 2) for v in verified],
                    "sha256sum_s_1gib": [round(h, 2) for h in hashed],
                    "small_exhibits": args.small,
                    "large_mib": args.large_mib,
                    "bag_bytes_1000": bag_small.stat().st_size,
                }
            )
        )


if __name__ == "__main__":
    main()
