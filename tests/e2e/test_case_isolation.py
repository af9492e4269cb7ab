"""Cases holding the same bytes: what one case's members learn of the other (nothing)."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.e2e.servers import Service
from tests.e2e.test_access_events import Account, add_user, tagged_png
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
