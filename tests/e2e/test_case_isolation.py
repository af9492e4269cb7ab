"""Cases holding the same bytes: what one case's members learn of the other (nothing)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from tests.e2e.servers import Service
from tests.e2e.test_access_events import Account, add_user, tagged_png
from tests.e2e.test_exports import download, export, wait_ready
from tests.e2e.test_ingest import new_case


def _upload(service: Service, account: Account, case: str, data: bytes) -> dict[str, Any]:
    with account.client(service) as client:
        response = client.put(f"/v1/cases/{case}/evidence", content=data)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _first_seen(service: Service, account: Account, sha: str) -> str:
    with account.client(service) as client:
        response = client.get(f"/v1/evidence/{sha}")
    assert response.status_code == 200, response.text
    return str(response.json()["first_seen_at"])


def test_an_upload_says_whether_the_bytes_were_held_only_to_who_could_read_them(
    service: Service,
) -> None:
    with service.client() as creator:
        here, there = new_case(creator, "Here"), new_case(creator, "There")
    holder = add_user(service.env, "Amina Okafor", "lawyer", here)
    lawyer = add_user(service.env, "Lena Berg", "lawyer", there)
    field = add_user(service.env, "Tomas Reyes", "field", there)
    photo = tagged_png("held elsewhere")
    sha = hashlib.sha256(photo).hexdigest()
    held = _upload(service, holder, here, photo)
    assert held["stored"] is True

    # Case `there` holds nothing of it yet: the answer is a first upload's.
    first = _upload(service, lawyer, there, photo)
    assert first["stored"] is True, "the answer told a lawyer of another case it was held"
    assert _first_seen(service, lawyer, sha) == first["received_at"]
    assert _upload(service, lawyer, there, photo)["stored"] is False  # it could read it

    # A field account reads only its own uploads: a colleague's is not one it could read.
    own = _upload(service, field, there, photo)
    assert own["stored"] is True
    assert _first_seen(service, field, sha) == own["received_at"]
    assert _upload(service, field, there, photo)["stored"] is False

    assert _first_seen(service, holder, sha) == held["received_at"]


def test_the_same_copy_made_in_two_cases_is_read_and_exported_through_each_ones_entry(
    service: Service, tmp_path: Path
) -> None:
    with service.client() as creator:
        here, there = new_case(creator, "Here"), new_case(creator, "There")
    first = add_user(service.env, "Amina Okafor", "lawyer", here)
    second = add_user(service.env, "Lena Berg", "lawyer", there)
    photo = tagged_png("made twice")
    sha = _upload(service, first, here, photo)["sha256"]
    _upload(service, second, there, photo)
    made = {}
    for account, case in ((first, here), (second, there)):
        with account.client(service) as client:
            response = client.post(f"/v1/evidence/{sha}/copies", json={"case_id": case})
        assert response.status_code == 201, response.text
        made[case] = response.json()
    copy = made[here]["sha256"]
    assert made[there]["sha256"] == copy, "the same original copied alike gives the same bytes"

    for account, case in ((first, here), (second, there)):
        with account.client(service) as client:
            record = client.get(f"/v1/copies/{copy}")
            assert record.status_code == 200, f"{case}: {record.text}"
            assert (record.json()["case_id"], record.json()["index"]) == (
                case,
                made[case]["index"],
            )
            content = client.get(f"/v1/copies/{copy}/content", params={"purpose": "brief"})
            assert content.status_code == 200, f"{case}: {content.text}"
            assert hashlib.sha256(content.content).hexdigest() == copy
            reads = [
                e
                for e in client.get(f"/v1/evidence/{sha}/custody").json()
                if e["type"] == "accessed"
            ]
        assert [(e["case_id"], e["sha256"], e["purpose"]) for e in reads] == [
            (case, copy, "brief")
        ], "the read is logged in the reader's case"

    with second.client(service) as client:
        export_id = export(client, there, [sha, copy])
        wait_ready(client, export_id)
        bag = download(client, export_id, tmp_path)
    with zipfile.ZipFile(bag) as archive:
        records = [
            json.loads(archive.read(f"custody-export-{export_id}/custody/exhibits/00{n}.json"))
            for n in (1, 2)
        ]
    for record in records:
        assert made[there]["index"] in record["entries"], record
        assert made[here]["index"] not in record["entries"], record
