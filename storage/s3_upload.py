"""Streaming, checksummed, create-only writes to S3: one PutObject or a multipart upload."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from storage.base import ObjectExistsError, StorageError
from storage.s3_client import BodyReader, s3_errors
from storage.streams import CHUNK_SIZE, StreamDigest, iter_chunks, read_up_to, sha256_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MAX_PARTS = 10_000  # S3: parts per multipart upload


def b64(digest: bytes) -> str:
    """Base64, as S3's checksum headers carry digests."""
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class Written:
    created: bool
    version_id: str | None  # the version now under the key: ours, or the identical one found


@dataclass(frozen=True, slots=True)
class _Job:
    key: str  # as the caller named it, for errors
    name: str  # the S3 object name: the key with the store's prefix
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Uploader:
    """Writes one object from a stream; `lock` holds the ObjectLock* request parameters."""

    client: S3Client
    bucket: str
    part_size: int
    multipart_threshold: int

    def write(
        self,
        key: str,
        name: str,
        source: BinaryIO,
        *,
        sha256: str,
        size: int,
        lock: dict[str, Any],
        mutable: bool,
    ) -> Written:
        """Write `source` as object `name` (the key with the store's prefix)."""
        # If-None-Match: * makes the write create-only on the server, atomically. SeaweedFS
        # 4.48 honours it on PutObject and CompleteMultipartUpload alike (tested), so no
        # head_object pre-check is needed.
        condition: dict[str, Any] = {} if mutable else {"IfNoneMatch": "*"}
        job = _Job(key, name, sha256, size)
        try:
            if size < self.multipart_threshold:
                version = self._put_single(job, source, {**condition, **lock})
            else:
                version = self._put_multipart(job, source, condition, lock)
        except ObjectExistsError:
            return self._existing(job)
        return Written(created=True, version_id=version)

    def _put_single(self, job: _Job, source: BinaryIO, extra: dict[str, Any]) -> str | None:
        data = read_up_to(source, job.size)
        digest = StreamDigest()
        digest.update(data)
        for chunk in iter_chunks(source):  # bytes beyond the declared size: hashed, not kept
            digest.update(chunk)
        # All bytes are in hand, so a wrong digest is refused before anything is sent.
        digest.verify(job.key, sha256=job.sha256, size=job.size)
        with s3_errors(job.key):
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=job.name,
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=b64(digest.digest()),
                **extra,
            )
        return response.get("VersionId")

    def _put_multipart(
        self, job: _Job, source: BinaryIO, condition: dict[str, Any], lock: dict[str, Any]
    ) -> str | None:
        with s3_errors(job.key):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=job.name, ChecksumAlgorithm="SHA256", **lock
            )["UploadId"]
        try:
            digest = StreamDigest()
            parts = self._upload_parts(job, upload_id, source, digest)
            # Checked before completing, so that wrong bytes never become visible.
            digest.verify(job.key, sha256=job.sha256, size=job.size)
            with s3_errors(job.key):
                response = self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=job.name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **condition,
                )
        except BaseException:
            self._abort(job, upload_id)
            raise
        return response.get("VersionId")

    def _upload_parts(
        self, job: _Job, upload_id: str, source: BinaryIO, digest: StreamDigest
    ) -> list[CompletedPartTypeDef]:
        # Parts grow for very large objects, so that they never exceed S3's part count.
        part_size = max(self.part_size, -(-job.size // MAX_PARTS))
        parts: list[CompletedPartTypeDef] = []
        while chunk := read_up_to(source, part_size):  # one part in memory at a time
            digest.update(chunk)
            if digest.size > job.size:
                # More than declared: the digest check will fail; hash the rest, upload nothing.
                for rest in iter_chunks(source):
                    digest.update(rest)
                break
            checksum = b64(hashlib.sha256(chunk).digest())
            number = len(parts) + 1
            with s3_errors(job.key):
                response = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=job.name,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
            parts.append(
                {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}
            )
        return parts

    def _abort(self, job: _Job, upload_id: str) -> None:
        # The error that led here matters more; an unfinished upload is invisible to readers.
        with contextlib.suppress(StorageError), s3_errors(job.key):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=job.name, UploadId=upload_id)

    def _existing(self, job: _Job) -> Written:
        """The object a create-only write met: the same bytes (a no-op), else an error."""
        with s3_errors(job.key):
            head = self.client.head_object(Bucket=self.bucket, Key=job.name, ChecksumMode="ENABLED")
        version_id = head.get("VersionId")
        if head["ContentLength"] != job.size:
            raise ObjectExistsError(job.key)
        checksum = head.get("ChecksumSHA256")
        # A multipart object's checksum ("...-N") covers its part checksums and so depends on
        # the part sizes; only a whole-object checksum can be compared, else read the bytes.
        if checksum and "-" not in checksum:
            same = checksum == b64(bytes.fromhex(job.sha256))
        else:
            same = self._read_sha256(job, version_id) == job.sha256
        if not same:
            raise ObjectExistsError(job.key)
        return Written(created=False, version_id=version_id)

    def _read_sha256(self, job: _Job, version_id: str | None) -> str:
        version: dict[str, Any] = {} if version_id is None else {"VersionId": version_id}
        with s3_errors(job.key):
            response = self.client.get_object(Bucket=self.bucket, Key=job.name, **version)
        with io.BufferedReader(BodyReader(response["Body"], job.key), CHUNK_SIZE) as stream:
            return sha256_of(stream)
