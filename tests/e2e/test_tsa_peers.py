"""Independent TSAs end to end: the built-in one, a peer service, openssl's, and one that is down.

Service A timestamps every checkpoint with its own TSA, with a second instance of the service
(B, its own data directory), and with `openssl ts -reply` behind a small loopback HTTP
wrapper, and is configured with a fourth TSA on a port where nothing listens. The tokens are
checked with `openssl ts -verify` and `custody audit`, each against its own root only.

B's `POST /tsa` is also fuzzed: random bytes and mutants of real queries (bit flips,
truncations, insertions, edited DER length octets) always get HTTP 200 and a TimeStampResp
that `parse_response` reads, granted only for a valid request.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import cms
from asn1crypto import tsp as asn1_tsp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from api.tsa import MAX_QUERY_BYTES, QUERY_TYPE, REPLY_TYPE
from custody.errors import TimestampRequestError
from custody.tsp import (
    DEFAULT_POLICY,
    HASH_ALGORITHMS,
    TimestampReply,
    TimestampRequest,
    make_request,
    parse_request,
    parse_response,
    verify_token,
)
from tests.e2e.conftest import base_env
from tests.e2e.servers import Service, custody_cli, free_port, running_service
from tests.e2e.test_ingest import new_case

OPENSSL = shutil.which("openssl") or "openssl"
POLICY = "1.2.3.4.1"  # the openssl TSA's default_policy
# DER length octets worth trying: short-form extremes and long-form prefixes.
LENGTH_EDITS = (0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x84, 0x85, 0xFF)
RECEIPT_WAIT = 20.0  # seconds: CUSTODY_RECEIPT_WAIT_SECONDS, far above what an ingest takes
CERTS_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = OpenSSL Test TSA Root
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[tsa]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
TS_CNF = """\
[tsa]
default_tsa = tsa_config
[tsa_config]
serial = {serial}
default_policy = {policy}
digests = sha256
signer_digest = sha256
ess_cert_id_alg = sha256
accuracy = secs:1
"""


def openssl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENSSL, *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )


def must(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(map(str, result.args))}: {result.stderr}"


def make_openssl_tsa(directory: Path) -> None:
    """ca.pem (a P-256 root) and tsa.pem/tsa.key (its TSA, critical EKU timeStamping)."""
    directory.mkdir(parents=True)
    (directory / "certs.cnf").write_text(CERTS_CNF)
    (directory / "ts.cnf").write_text(TS_CNF.format(serial=directory / "tsaserial", policy=POLICY))
    (directory / "tsaserial").write_text("01\n")
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    must(openssl(
        "req", "-config", "certs.cnf", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "30", "-extensions", "root",
        cwd=directory,
    ))  # fmt: skip
    must(openssl(
        "req", "-config", "certs.cnf", "-new", *curve, "-keyout", "tsa.key", "-out", "tsa.csr",
        "-subj", "/CN=OpenSSL Test TSA",
        cwd=directory,
    ))  # fmt: skip
    must(openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
        "2", "-days", "30", "-extfile", "certs.cnf", "-extensions", "tsa", "-out", "tsa.pem",
        cwd=directory,
    ))  # fmt: skip


@contextmanager
def openssl_tsa(directory: Path) -> Iterator[str]:
    """`openssl ts -reply` as an RFC 3161 §3.4 HTTP TSA on loopback; yields its URL."""
    make_openssl_tsa(directory)
    lock = threading.Lock()  # one openssl at a time: they share the serial file

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock, tempfile.TemporaryDirectory(dir=directory) as work:
                (Path(work) / "q.tsq").write_bytes(query)
                result = openssl(
                    "ts", "-reply", "-queryfile", f"{work}/q.tsq", "-signer", "tsa.pem",
                    "-inkey", "tsa.key", "-chain", "ca.pem", "-config", "ts.cnf",
                    "-out", f"{work}/r.tsr",
                    cwd=directory,
                )  # fmt: skip
                reply = (Path(work) / "r.tsr").read_bytes() if result.returncode == 0 else b""
            status, kind, body = (
                (200, REPLY_TYPE, reply) if reply else (500, "text/plain", result.stderr.encode())
            )
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def save_root(base_url: str, path: Path) -> Path:
    """The root of a service's built-in TSA: the last certificate of GET /v1/tsa/certs."""
    response = httpx.get(f"{base_url}/v1/tsa/certs", timeout=30)
    assert response.status_code == 200, response.text
    path.write_bytes(
        x509.load_pem_x509_certificates(response.content)[-1].public_bytes(Encoding.PEM)
    )
    return path


def ingest(client: httpx.Client, case: str) -> dict[str, Any]:
    start = time.monotonic()
    response = client.put(f"/v1/cases/{case}/evidence", content=os.urandom(700))
    elapsed = time.monotonic() - start
    assert response.status_code == 201, response.text
    assert elapsed < RECEIPT_WAIT / 2, f"the ingest waited {elapsed:.1f} s for a TSA"
    return dict(response.json())


def assert_timestamped(
    client: httpx.Client, out: dict[str, Any], roots: dict[str, Path], tmp_path: Path
) -> None:
    """Three tokens over the receipt's checkpoint, each verified by openssl with its own root."""
    stamps = out["timestamps"]
    assert [s["tsa"] for s in stamps] == ["builtin", "peer", "openssl"]
    assert out["timestamps_pending"] == ["down"]
    assert out["trusted_time"] is not None
    size = int(stamps[0]["object"].removeprefix("checkpoints/").partition(".")[0])
    checkpoint = client.get(f"/v1/log/checkpoints/{size}")
    assert checkpoint.status_code == 200
    assert out["receipt"].endswith(checkpoint.text)
    data = tmp_path / f"checkpoint-{size}"
    data.write_bytes(checkpoint.content)
    for slot, stamp in enumerate(stamps):
        assert stamp["object"] == f"checkpoints/{size}.tsr.{slot}"
        token = tmp_path / f"{size}-{stamp['tsa']}.der"
        token.write_bytes(base64.b64decode(stamp["token"]))
        root = roots[stamp["tsa"]]
        chain = x509.load_pem_x509_certificates(stamp["chain_pem"].encode())
        assert chain[-1] == x509.load_pem_x509_certificate(root.read_bytes())
        verified = openssl(
            "ts", "-verify", "-data", str(data), "-token_in", "-in", str(token),
            "-CAfile", str(root),
        )  # fmt: skip
        assert verified.returncode == 0, f"{stamp['tsa']}: {verified.stderr}"
        assert "Verification: OK" in verified.stdout
        others = [r for name, r in roots.items() if name != stamp["tsa"]]
        refused = openssl(
            "ts", "-verify", "-data", str(data), "-token_in", "-in", str(token),
            "-CAfile", str(others[0]),
        )  # fmt: skip
        assert refused.returncode != 0, f"{stamp['tsa']}'s token verified under another root"


def pending_metrics(service: Service) -> dict[str, int]:
    response = httpx.get(f"{service.base_url}/metrics", headers=service.auth, timeout=30)
    assert response.status_code == 200, response.text
    found = re.findall(r'^custody_timestamps_pending\{tsa="([^"]+)"\} (\d+)$', response.text, re.M)
    return {name: int(count) for name, count in found}


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Service B: a second instance with its own data directory, shared by this module."""
    data_dir = tmp_path_factory.mktemp("peer")
    with running_service(base_env(data_dir), data_dir) as service:
        yield service


def test_independent_tsas_stamp_every_checkpoint_and_one_that_is_down_blocks_nothing(
    peer: Service, tmp_path: Path
) -> None:
    own_dir = tmp_path / "own"
    own_dir.mkdir()
    with openssl_tsa(tmp_path / "openssl") as openssl_url:
        roots = {
            "peer": save_root(peer.base_url, tmp_path / "peer-root.pem"),
            "openssl": tmp_path / "openssl" / "ca.pem",
        }
        env = {
            **base_env(own_dir),
            "CUSTODY_TSA_URLS": f"builtin,peer={peer.base_url}/tsa,openssl={openssl_url},"
            f"down=http://127.0.0.1:{free_port()}/",
            "CUSTODY_TSA_TRUST_ANCHORS": f"{roots['peer']},{roots['openssl']}",
            "CUSTODY_RECEIPT_WAIT_SECONDS": str(RECEIPT_WAIT),
        }
        with running_service(env, own_dir) as service:
            roots["builtin"] = save_root(service.base_url, tmp_path / "own-root.pem")
            with service.client() as client:
                case = new_case(client)
                assert_timestamped(client, ingest(client, case), roots, tmp_path)
                # The TSA that is down is a backlog, not a stop: the log goes on.
                indices = []
                for _ in range(3):
                    out = ingest(client, case)
                    assert_timestamped(client, out, roots, tmp_path)
                    indices.append(out["index"])
                sizes = client.get("/v1/log/checkpoints").json()["sizes"]
                assert sizes[-1] == indices[-1] + 1, "the last checkpoint covers the last ingest"
                vkey = tmp_path / "vkey"
                vkey.write_text(client.get("/v1/log/vkey").text)
            assert pending_metrics(service) == {
                "builtin": 0,
                "peer": 0,
                "openssl": 0,
                "down": len(sizes),
            }

    audit = custody_cli(
        "audit", str(own_dir / "objects"), "--vkey", str(vkey), "--json",
        "--state", str(tmp_path / "state.json"),
        "--tsa-ca", str(roots["builtin"]), "--tsa-ca", str(roots["peer"]),
        "--tsa-ca", str(roots["openssl"]),
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report = json.loads(audit.stdout)
    assert report["timestamps"] == {
        "checked": True,
        "valid": 3 * len(sizes),
        "untrusted": 0,
        "checkpoints_missing": [],
    }


# ---------------------------------------------------------------------------------------
# POST /tsa fuzzed
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peer_tsa(peer: Service) -> Iterator[httpx.Client]:
    """B's public TSA endpoint, over one kept-alive connection (no token: a TSA is public)."""
    with httpx.Client(base_url=peer.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def chain(peer_tsa: httpx.Client) -> list[x509.Certificate]:
    """B's TSA certificate, then its root."""
    response = peer_tsa.get("/v1/tsa/certs")
    assert response.status_code == 200
    return x509.load_pem_x509_certificates(response.content)


def post(tsa: httpx.Client, query: bytes) -> TimestampReply:
    response = tsa.post("/tsa", content=query, headers={"Content-Type": QUERY_TYPE})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == REPLY_TYPE
    return parse_response(response.content)


def length_offsets(der: bytes, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets of the first length octet of every TLV in `der`, at every depth.

    For well-formed DER with one-byte tags, which is what `make_request` writes.
    """
    end = len(der) if end is None else end
    offsets = []
    pos = start
    while pos < end:
        constructed = der[pos] & 0x20
        offsets.append(pos + 1)
        first = der[pos + 1]
        pos += 2
        length = first
        if first & 0x80:
            size = first & 0x7F
            length = int.from_bytes(der[pos : pos + size], "big")
            pos += size
        if constructed:
            offsets += length_offsets(der, pos, pos + length)
        pos += length
    return offsets


@st.composite
def valid_queries(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A real TimeStampReq, and the message it is over."""
    message = draw(st.binary(max_size=64))
    query = make_request(
        message,
        nonce=draw(st.integers(min_value=1, max_value=2**96)),
        hash_algorithm=draw(st.sampled_from(sorted(HASH_ALGORITHMS))),
        cert_req=draw(st.booleans()),
        policy=draw(st.sampled_from([None, DEFAULT_POLICY, "1.2.3.4.5"])),
    )
    return query, message


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    query, _ = draw(valid_queries())
    data = bytearray(query)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "length"]))
        if not data:
            break
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            offsets = [o for o in length_offsets(query) if o < len(data)]
            if offsets:
                offset = draw(st.sampled_from(offsets))
                edits = (*LENGTH_EDITS, (query[offset] + 1) % 256, (query[offset] - 1) % 256)
                data[offset] = draw(st.sampled_from(edits))
    return bytes(data)


def accepted(query: bytes) -> TimestampRequest | None:
    """The request the built-in TSA must grant, or None if it must refuse it."""
    try:
        request = parse_request(query)
    except TimestampRequestError:
        return None
    return request if request.policy in (None, DEFAULT_POLICY) else None


def asn1crypto_reads(query: bytes) -> bool:
    """A second parser's opinion: a strict load whose re-encoding is the input."""
    try:
        request = asn1_tsp.TimeStampReq.load(query, strict=True)
        request.native  # noqa: B018 (parses every field)
        return bool(request.dump(force=True) == query)
    except Exception:  # any failure of the second parser means "not a request"
        return False


def assert_answer(tsa: httpx.Client, query: bytes) -> TimestampReply:
    """One query's answer: a rejection with its reason, or a token over what was asked."""
    reply = post(tsa, query)
    request = accepted(query)
    if request is None:
        assert reply.status == "rejection", reply
        assert reply.token is None
        assert "failure info: " in reply.text
        return reply
    assert asn1crypto_reads(query), "granted what a second DER parser cannot read"
    assert reply.status == "granted", reply
    assert reply.token is not None
    content = cms.ContentInfo.load(reply.token)["content"]
    tst_info = content["encap_content_info"]["content"].parsed
    imprint = tst_info["message_imprint"]
    assert imprint["hash_algorithm"]["algorithm"].native == request.hash_algorithm
    assert imprint["hashed_message"].native == request.message_imprint
    assert tst_info["nonce"].native == request.nonce
    assert (len(content["certificates"]) > 0) == request.cert_req
    return reply


@settings(max_examples=150, deadline=timedelta(seconds=5))
@given(query=st.binary(max_size=512))
def test_random_bytes_are_rejected_in_the_protocol(peer_tsa: httpx.Client, query: bytes) -> None:
    assert_answer(peer_tsa, query)


@settings(max_examples=300, deadline=timedelta(seconds=5))
@given(query=mutants())
def test_mutated_queries_are_answered_in_the_protocol(peer_tsa: httpx.Client, query: bytes) -> None:
    assert_answer(peer_tsa, query)


@settings(max_examples=40, deadline=timedelta(seconds=5))
@given(case=valid_queries())
def test_valid_queries_are_granted_tokens_that_verify(
    peer_tsa: httpx.Client, chain: list[x509.Certificate], case: tuple[bytes, bytes]
) -> None:
    query, message = case
    reply = assert_answer(peer_tsa, query)
    request = parse_request(query)
    if request.policy not in (None, DEFAULT_POLICY):
        assert "unaccepted_policy" in reply.text
        return
    assert reply.token is not None
    verified = verify_token(
        reply.token,
        message=message,
        nonce=request.nonce,
        trust_anchors=chain[-1:],
        extra_certs=chain[:-1],  # a token asked without certReq carries no certificate
    )
    assert verified.trusted


def test_length_offsets_finds_every_length_octet() -> None:
    query = make_request(b"x", nonce=1, policy=DEFAULT_POLICY)
    offsets = length_offsets(query)
    # TimeStampReq, version, messageImprint, its AlgorithmIdentifier and OID, hashedMessage,
    # reqPolicy, nonce, certReq: one length octet each, all in the short form here.
    assert offsets[0] == 1
    assert all(query[o] < 0x80 for o in offsets)
    assert len(offsets) == 9


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "malformed TimeStampReq"),
        (b"\x30\x00", "malformed TimeStampReq"),
        (b"\x30" * (MAX_QUERY_BYTES + 1), f"at most {MAX_QUERY_BYTES} bytes"),
    ],
)
def test_edge_bodies_are_rejections_naming_the_reason(
    peer_tsa: httpx.Client, body: bytes, words: str
) -> None:
    reply = post(peer_tsa, body)
    assert reply.status == "rejection"
    assert words in reply.text


def test_a_body_that_is_not_a_query_is_a_problem(peer_tsa: httpx.Client) -> None:
    response = peer_tsa.post("/tsa", content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
