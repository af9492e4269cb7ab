"""Every read of evidence is one provable `accessed` event; refusals log nothing (issue 6)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from custody.checkpoint import open_checkpoint
from custody.merkle import leaf_hash, verify_inclusion
from custody.note import Verifier, parse_vkey
from custody.purpose import commit_purpose
from custody.receipt import parse_receipt, verify_receipt
from tests.e2e.servers import Service, custody_cli
from tests.e2e.test_ingest import assert_problem, event_count, new_case

PURPOSE = "Preparing the hearing of 12 May: exhibit list"
INTEGRATED_WAIT = 30.0  # seconds for an entry to reach a published checkpoint


@dataclass(frozen=True)
class Account:
    user_id: str
    name: str
    token: str

    def client(self, service: Service) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=service.base_url, headers=headers, timeout=60)


def add_user(env: dict[str, str], name: str, role: str, *cases: str) -> Account:
    """`custody admin create-user`, as an operator would run it (with `--case` for each)."""
    options = [arg for case in cases for arg in ("--case", case)]
    result = custody_cli("admin", "create-user", "--name", name, "--role", role, *options, env=env)
    assert result.returncode == 0, result.stderr
    created = re.search(r"\bCreated user (\S+)", result.stdout)
    assert created is not None, result.stdout
    return Account(created.group(1), name, result.stdout.strip().splitlines()[-1])


def tagged_png(label: str) -> bytes:
    """A small PNG with a text chunk, so its sharing copy differs from it."""
    info = PngInfo()
    info.add_text("Author", label)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), tuple(os.urandom(3))).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def pseudonym(admin: httpx.Client, case: str, user_id: str) -> str:
    members = admin.get(f"/v1/cases/{case}/members").json()
    return str(next(m["pseudonym"] for m in members if m["user_id"] == user_id))


def custody(client: httpx.Client, sha: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/evidence/{sha}/custody")
    assert response.status_code == 200, response.text
    return list(response.json())


def integrated(client: httpx.Client, path: str) -> httpx.Response:
    """GET a log resource that exists once its entry is in a published checkpoint."""
    deadline = time.monotonic() + INTEGRATED_WAIT
    while (response := client.get(path)).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert response.status_code == 200, response.text
    return response


def assert_provable(client: httpx.Client, verifier: Verifier, index: int, sha: str) -> bytes:
    """The entry's receipt verifies offline, and so does an inclusion proof; its bytes."""
    receipt = integrated(client, f"/v1/log/entries/{index}/receipt").content
    verified = verify_receipt(parse_receipt(receipt), verifier, file_sha256=sha)
    assert verified.index == index
    checkpoint = open_checkpoint(client.get("/v1/log/checkpoint").content, verifier)
    entry = client.get(f"/v1/log/entries/{index}").content
    proof = client.get(
        "/v1/log/proofs/inclusion", params={"index": index, "size": checkpoint.size}
    ).json()
    verify_inclusion(
        index=index,
        size=checkpoint.size,
        leaf_hash=leaf_hash(entry),
        proof=[base64.b64decode(h) for h in proof["proof"]],
        root=checkpoint.root,
    )
    assert entry == verified.entry
    return entry


def test_each_read_is_one_provable_accessed_event(service: Service) -> None:
    with service.client() as admin:
        case = new_case(admin)
        lawyer = add_user(service.env, "Amina Okafor", "lawyer", case)
        field = add_user(service.env, "Tomas Reyes", "field", case)
        outsider = add_user(service.env, "Lena Berg", "lawyer")
        auditor = add_user(service.env, "Ruth Adler", "auditor")
        original = admin.put(f"/v1/cases/{case}/evidence", content=tagged_png(lawyer.name))
        assert original.status_code == 201, original.text
        sha = original.json()["sha256"]
        made = admin.post(f"/v1/evidence/{sha}/copies", json={})
        assert made.status_code == 201, made.text
        copy = made.json()["sha256"]
        assert copy != sha
        verifier = parse_vkey(admin.get("/v1/log/vkey").text.strip())
        reader = pseudonym(admin, case, lawyer.user_id)

        reads = [
            ("original", sha, f"/v1/evidence/{sha}/content"),
            ("metadata", sha, f"/v1/evidence/{sha}/metadata"),
            ("copy", copy, f"/v1/copies/{copy}/content"),
        ]
        keys: set[str] = set()
        with lawyer.client(service) as client:
            for kind, subject, path in reads:
                before = custody(client, sha)
                response = client.get(path, params={"purpose": PURPOSE})
                assert response.status_code == 200, response.text
                after = custody(client, sha)
                assert [e["index"] for e in after[: len(before)]] == [e["index"] for e in before]
                assert len(after) == len(before) + 1, f"{kind}: not exactly one event"
                event = after[-1]
                assert event["type"] == "accessed"
                assert event["access"] == kind
                assert event["actor"] == reader
                assert event["case_id"] == case
                assert event["sha256"] == subject
                assert event["purpose"] == PURPOSE
                # The entry commits to the purpose under a key of its own, shown with the text.
                key = bytes.fromhex(event["purpose_key"])
                committed = commit_purpose(PURPOSE, key)
                assert event["entry"]["access"] == {"kind": kind, "purpose_hmac_sha256": committed}

                entry = assert_provable(admin, verifier, event["index"], subject)
                assert json.loads(entry)["actor"] == reader
                plain = hashlib.sha256(PURPOSE.encode()).hexdigest()  # guessable from the text
                for secret in (PURPOSE, plain, event["purpose_key"], lawyer.user_id, lawyer.name):
                    assert secret.encode() not in entry
                keys.add(event["purpose_key"])

            history = custody(client, sha)
        types = [event["type"] for event in history]
        assert types[:2] == ["ingested", "derived"]
        assert types[2:] == ["accessed"] * 3
        indexes = [event["index"] for event in history]
        assert indexes == sorted(set(indexes))
        assert all(event["time"] and event["actor"] for event in history)
        assert len(keys) == len(reads), "two reads shared a purpose key"

        # The purpose's text and key are for the case's readers; an auditor sees the
        # commitment only.
        with auditor.client(service) as client:
            seen = custody(client, sha)
        assert [e["index"] for e in seen] == indexes
        assert all(e["purpose"] is None and e["purpose_key"] is None for e in seen)

        _refused_reads_log_nothing(service, admin, case, field, outsider, sha, copy)


def _refused_reads_log_nothing(
    service: Service,
    admin: httpx.Client,
    case: str,
    field: Account,
    outsider: Account,
    sha: str,
    copy: str,
) -> None:
    with field.client(service) as client:
        own = client.put(f"/v1/cases/{case}/evidence", content=os.urandom(512))
        assert own.status_code == 201, own.text
        mine = own.json()["sha256"]
        history = [e["index"] for e in custody(admin, mine)]
        start = event_count(admin, case)
        assert_problem(client.get(f"/v1/evidence/{mine}/content"), 403)
        refused = client.get(f"/v1/copies/{copy}/content")  # of an original not its own
        assert_problem(refused, 403 if refused.status_code == 403 else 404)
        assert_problem(client.get(f"/v1/evidence/{sha}/content"), 404)  # not its upload
    with outsider.client(service) as client:
        for path in (f"/v1/evidence/{sha}/content", f"/v1/copies/{copy}/content"):
            assert_problem(client.get(path, params={"purpose": PURPOSE}), 404)
        assert_problem(client.get(f"/v1/evidence/{sha}/metadata"), 404)
    missing = "0" * 64
    for path in (f"/v1/evidence/{missing}/content", f"/v1/copies/{missing}/content"):
        assert_problem(admin.get(path), 404)
    for path in (f"/v1/evidence/{sha}/content", f"/v1/evidence/{sha}/metadata"):
        assert_problem(httpx.get(service.base_url + path), 401)
    # The probe is the only entry appended since `start`: no refusal reached the log.
    assert event_count(admin, case) == start + 1
    assert [e["index"] for e in custody(admin, mine)] == history


# The events are the store's business only through the appender the reads test already
# covers on both deployments; one (the faster) is enough here.
@pytest.mark.parametrize("deployment", ["sqlite-local"], indirect=True)
def test_case_creation_and_membership_are_logged_by_pseudonym(service: Service) -> None:
    with service.client() as admin:
        scratch = new_case(admin, "Scratch")
        auditor = add_user(service.env, "Ruth Adler", "auditor")
        lawyer = add_user(service.env, "Amina Okafor", "lawyer", scratch)
        admin_id = admin.get(f"/v1/cases/{scratch}/members").json()[0]["user_id"]
        start = event_count(admin, scratch) + 1

        case = new_case(admin, "Border crossing interviews")
        added = admin.post(f"/v1/cases/{case}/members", json={"user_id": lawyer.user_id})
        assert added.status_code == 201, added.text
        with lawyer.client(service) as client:
            assert client.get(f"/v1/cases/{case}").status_code == 200
            gone = admin.delete(f"/v1/cases/{case}/members/{lawyer.user_id}")
            assert gone.status_code == 204, gone.text
            assert_problem(client.get(f"/v1/cases/{case}"), 404)
        end = event_count(admin, scratch)
        admin_pseudonym = pseudonym(admin, case, admin_id)
        lawyer_pseudonym = pseudonym(admin, scratch, lawyer.user_id)

    with auditor.client(service) as client:
        entries = [integrated(client, f"/v1/log/entries/{i}").content for i in range(start, end)]
    events = [json.loads(entry) for entry in entries]
    assert [(e["type"], e.get("target")) for e in events] == [
        ("case-created", None),
        ("member-added", admin_pseudonym),
        ("member-added", lawyer_pseudonym),
        ("member-removed", lawyer_pseudonym),
    ]
    assert all(e["case"] == case and e["actor"] == admin_pseudonym for e in events)
    for entry in entries:
        for secret in (admin_id, lawyer.user_id, lawyer.name, "E2E admin"):
            assert secret.encode() not in entry


# Who sees a purpose is decided by the API over the index; one deployment is enough.
@pytest.mark.parametrize("deployment", ["sqlite-local"], indirect=True)
def test_a_purpose_is_shown_only_to_readers_of_the_case_it_was_stated_in(
    service: Service,
) -> None:
    with service.client() as creator:
        here, there = new_case(creator, "Here"), new_case(creator, "There")
    admin = add_user(service.env, "Noor Haddad", "admin", here)  # a member of `here` only
    lawyer = add_user(service.env, "Amina Okafor", "lawyer", there)
    photo = tagged_png("shared")
    with admin.client(service) as client:
        assert client.put(f"/v1/cases/{here}/evidence", content=photo).status_code == 201
        read = client.get(
            f"/v1/evidence/{hashlib.sha256(photo).hexdigest()}/content",
            params={"purpose": "Here: for the hearing"},
        )
        assert read.status_code == 200, read.text
    with lawyer.client(service) as client:
        ingest = client.put(f"/v1/cases/{there}/evidence", content=photo)
        assert ingest.status_code == 201, ingest.text
        sha = ingest.json()["sha256"]
        read = client.get(f"/v1/evidence/{sha}/content", params={"purpose": PURPOSE})
        assert read.status_code == 200, read.text
        theirs = [e for e in custody(client, sha) if e["type"] == "accessed"]
    assert [(e["case_id"], e["purpose"]) for e in theirs] == [(there, PURPOSE)]

    with admin.client(service) as client:
        seen = [e for e in custody(client, sha) if e["type"] == "accessed"]
    # An admin sees every case's events, as an auditor does; a purpose only in its own case.
    assert [(e["case_id"], e["purpose"]) for e in seen] == [
        (here, "Here: for the hearing"),
        (there, None),
    ]
    assert seen[1]["entry"] == theirs[0]["entry"], "the entry itself is the auditor's view"
