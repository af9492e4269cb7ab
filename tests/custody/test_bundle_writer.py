"""The zip a bag streams into: one top-level directory, manifests of what was really copied."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, datetime

import pytest

from custody.bundle.bagit import parse_manifest
from custody.bundle.writer import BagWriter
from custody.errors import BundleError

TIME = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def test_payload_manifests_tag_manifests_and_signatures() -> None:
    sink = io.BytesIO()
    writer = BagWriter(sink, "custody-export-x_1", time=TIME)
    photo, note = b"\xff\xd8photo" * 1000, b"note"
    digests = writer.add_payload("data/001-photo.jpg", io.BytesIO(photo), size=len(photo))
    assert digests == {
        "sha256": hashlib.sha256(photo).hexdigest(),
        "sha512": hashlib.sha512(photo).hexdigest(),
    }
    writer.add_payload("data/002-note.txt", io.BytesIO(note), size=len(note))
    manifest = writer.payload_manifests()
    assert writer.oxum == f"{len(photo) + len(note)}.2"
    writer.add_tag("custody/bundle.json", b"{}")
    tag_manifests = writer.finish(lambda data: b"S" + hashlib.sha256(data).digest())

    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as archive:
        names = archive.namelist()
        assert {name.split("/")[0] for name in names} == {"custody-export-x_1"}
        root = "custody-export-x_1/"
        assert archive.read(root + "manifest-sha256.txt") == manifest
        assert archive.read(root + "data/001-photo.jpg") == photo
        assert archive.getinfo(root + "data/001-photo.jpg").compress_type == zipfile.ZIP_STORED
        listed = parse_manifest(archive.read(root + "tagmanifest-sha256.txt"), name="t")
        assert set(listed) == {"manifest-sha256.txt", "manifest-sha512.txt", "custody/bundle.json"}
        assert listed["custody/bundle.json"] == hashlib.sha256(b"{}").hexdigest()
        signature = archive.read(root + "tagmanifest-sha512.txt.sig")
        assert signature == b"S" + hashlib.sha256(tag_manifests["sha512"]).digest()
        assert archive.getinfo(names[0]).date_time == (2026, 11, 29, 10, 0, 0)


def test_a_short_read_from_the_store_fails_the_bag() -> None:
    writer = BagWriter(io.BytesIO(), "bag", time=TIME)
    with pytest.raises(BundleError, match="expected 10 bytes from the store, read 3"):
        writer.add_payload("data/001-x", io.BytesIO(b"abc"), size=10)


@pytest.mark.parametrize(
    "path", ["../escape", "custody/../../x", "/abs", "custody//double", "custody/./x"]
)
def test_paths_stay_inside_the_bag(path: str) -> None:
    writer = BagWriter(io.BytesIO(), "bag", time=TIME)
    with pytest.raises(BundleError, match="relative path"):
        writer.add_tag(path, b"x")


def test_payload_and_tags_keep_to_their_places_and_names_are_unique() -> None:
    writer = BagWriter(io.BytesIO(), "bag", time=TIME)
    with pytest.raises(BundleError, match="not under data/"):
        writer.add_payload("custody/x", io.BytesIO(b"x"), size=1)
    with pytest.raises(BundleError, match="under data/"):
        writer.add_tag("data/x", b"x")
    writer.add_tag("custody/x", b"x")
    with pytest.raises(BundleError, match="twice"):
        writer.add_tag("custody/x", b"y")
    with pytest.raises(BundleError, match="cannot name"):
        BagWriter(io.BytesIO(), "a/b", time=TIME)
