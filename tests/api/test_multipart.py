"""The streaming multipart reader: one file part, fields, malformed bodies."""

from __future__ import annotations

import os

import pytest

from api.multipart import MultipartError, MultipartReader

BOUNDARY = "----custodyboundary"
CT = f"multipart/form-data; boundary={BOUNDARY}"


def form(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: image/jpeg\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def read(body: bytes, step: int) -> tuple[MultipartReader, bytes]:
    reader = MultipartReader(CT)
    got = b""
    for i in range(0, len(body), step):
        got += b"".join(reader.write(body[i : i + step]))
    reader.finish()
    return reader, got


@pytest.mark.parametrize("step", [1, 7, 4096, 10**9])
def test_file_bytes_and_fields_in_any_chunking(step: int) -> None:
    data = os.urandom(20000) + f"\r\n--{BOUNDARY[:-1]}".encode()  # a near-boundary inside
    reader, got = read(form(("digest", None, b"sha-256=:x:"), ("file", "../a.jpg", data)), step)
    assert got == data
    assert reader.filename == "../a.jpg"
    assert reader.file_content_type == "image/jpeg"
    assert reader.fields == {"digest": "sha-256=:x:"}


def test_two_files_refused() -> None:
    with pytest.raises(MultipartError, match="exactly one file"):
        read(form(("file", "a", b"1"), ("other", "b", b"2")), 4096)


def test_no_file_refused() -> None:
    with pytest.raises(MultipartError, match="no file part"):
        read(form(("note", None, b"hello")), 4096)


def test_truncated_body_refused() -> None:
    body = form(("file", "a", b"12345"))
    with pytest.raises(MultipartError, match="ended before"):
        read(body[:-20], 4096)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "multipart/mixed; boundary=x"]
)
def test_wrong_content_type(content_type: str) -> None:
    with pytest.raises(MultipartError):
        MultipartReader(content_type)


def test_oversized_field_refused() -> None:
    with pytest.raises(MultipartError, match="longer than"):
        read(form(("digest", None, b"x" * 10000), ("file", "a", b"1")), 4096)
