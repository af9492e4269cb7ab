"""Exhibit records as JSON: they round-trip, and a malformed record is refused by field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from custody.bundle.model import (
    SHARING_COPY,
    BundleInfo,
    Collection,
    CopyOrigin,
    ExhibitRecord,
)
from custody.errors import BundleError


def a_copy() -> ExhibitRecord:
    return ExhibitRecord(
        number=2,
        path="data/002-site.shared.jpg",
        filename="site.shared.jpg",
        kind=SHARING_COPY,
        sha256="a" * 64,
        sha512="b" * 128,
        size=1234,
        media_type="image/jpeg",
        entries=(3, 9, 40),
        collected=Collection(entry=3, checkpoint=4, consistency=(b"\x01" * 32, b"\x02" * 32)),
        copy_of=CopyOrigin("c" * 64, "share/1", "jpeg/1", ("APP1 Exif",), "jpeg-scans", "d" * 64),
    )


def test_records_and_bundle_info_round_trip() -> None:
    record = a_copy()
    assert ExhibitRecord.from_json(record.to_json()) == record
    info = BundleInfo(
        export_id="x_1",
        case_id="c_1",
        case_title="Site 4",
        organisation="Legal Aid",
        purpose="For the court",
        purpose_key="5e" * 32,
        created="2026-11-29T10:00:00.000000Z",
        log_origin="custody.example",
        checkpoint=41,
        manifest_sha256="e" * 64,
        exhibits=2,
        timestamps_pending={4: ("tsa-b",)},
    )
    assert BundleInfo.from_json(info.to_json()) == info
    assert info.to_json()["timestamps_pending"] == {"4": ["tsa-b"]}
    # A bag from before keyed purpose commitments has no key, and reads as such.
    earlier = replace(info, purpose_key=None)
    assert "purpose_key" not in earlier.to_json()
    assert BundleInfo.from_json(earlier.to_json()) == earlier
    with pytest.raises(BundleError, match="purpose_key"):
        BundleInfo.from_json({**info.to_json(), "purpose_key": 7})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "forgery"}, "kind"),
        ({"exhibit": -1}, "exhibit"),
        ({"exhibit": True}, "exhibit"),
        ({"entries": ["3"]}, "entries"),
        ({"sha256": None}, "sha256"),
        ({"filename": 7}, "filename"),
        ({"collected": {"entry": 3, "checkpoint": 4, "consistency": ["***"]}}, "base64"),
        ({"collected": {"entry": 3, "checkpoint": 4}}, "consistency"),
    ],
)
def test_malformed_records_name_the_field(change: dict[str, Any], field: str) -> None:
    value = {**a_copy().to_json(), **change}
    with pytest.raises(BundleError, match=field):
        ExhibitRecord.from_json(value)


def test_bundle_info_of_another_format_is_refused() -> None:
    with pytest.raises(BundleError, match="custody-bundle/1"):
        BundleInfo.from_json({"format": "custody-bundle/9"})
