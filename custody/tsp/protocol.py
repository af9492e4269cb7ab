"""RFC 3161 §2.4 messages: TimeStampReq (made and parsed) and TimeStampResp (parsed)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, core, tsp
from cryptography.hazmat.primitives import hashes

from custody.errors import TimestampError, TimestampRequestError, UnsupportedAlgorithmError
from custody.tsp.der import check_der, converting, present

HASH_ALGORITHMS = {"sha256": 32, "sha384": 48, "sha512": 64}  # name: digest size in bytes
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# ITU-T X.667: "2.25." and a UUID's integer value is an OID that needs no registration.
DEFAULT_POLICY = "2.25.271627974244485204201126569748471419464"

_GRANTED = ("granted", "granted_with_mods")  # RFC 3161 §2.4.2: the statuses that carry a token
# RFC 3161 §2.4.2 PKIFailureInfo: name -> bit number.
FAILURE_BITS = {
    "bad_alg": 0,
    "bad_request": 2,
    "bad_data_format": 5,
    "time_not_available": 14,
    "unaccepted_policy": 15,
    "unaccepted_extension": 16,
    "add_info_not_available": 17,
    "system_failure": 25,
}


class _FailureInfo(core.BitString):  # type: ignore[misc]
    _map = {bit: name for name, bit in FAILURE_BITS.items()}  # noqa: RUF012  (asn1crypto's schema)


class _StatusInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012  (asn1crypto's schema)
        ("status", tsp.PKIStatus),
        ("status_string", tsp.PKIFreeText, {"optional": True}),
        ("fail_info", _FailureInfo, {"optional": True}),
    ]


class TimeStampResp(core.Sequence):  # type: ignore[misc]
    # asn1crypto 1.5 makes the token mandatory; RFC 3161 §2.4.2 has it OPTIONAL.
    _fields = [  # noqa: RUF012  (asn1crypto's schema)
        ("status", _StatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


GRANTED_STATUS = _StatusInfo({"status": "granted"}).dump()


@dataclass(frozen=True, slots=True)
class TimestampRequest:
    hash_algorithm: str
    message_imprint: bytes
    nonce: int | None
    cert_req: bool
    policy: str | None

    def __post_init__(self) -> None:
        size = HASH_ALGORITHMS.get(self.hash_algorithm)
        if size is None:
            accepted = ", ".join(HASH_ALGORITHMS)
            raise TimestampRequestError(
                "bad_alg",
                f"unsupported hash algorithm {self.hash_algorithm} (accepted: {accepted})",
            )
        if len(self.message_imprint) != size:
            raise TimestampRequestError(
                "bad_data_format",
                f"the {self.hash_algorithm} message imprint is {len(self.message_imprint)} bytes,"
                f" not {size}",
            )


def new_nonce() -> int:
    """A positive 64-bit nonce, as `openssl ts -query` sends."""
    return secrets.randbelow(2**64 - 1) + 1


def make_request(
    message: bytes,
    *,
    nonce: int,
    hash_algorithm: str = "sha256",
    cert_req: bool = True,
    policy: str | None = None,
) -> bytes:
    """A DER TimeStampReq for `message`, hashed with `hash_algorithm`."""
    if hash_algorithm not in HASH_ALGORITHMS:
        raise UnsupportedAlgorithmError(hash_algorithm)
    request = TimestampRequest(
        hash_algorithm, digest_of(hash_algorithm, message), nonce, cert_req, policy
    )
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": imprint_of(request),
        "nonce": nonce,
        "cert_req": cert_req,
    }
    if policy is not None:
        fields["req_policy"] = policy
    return bytes(tsp.TimeStampReq(fields).dump())


def parse_request(der: bytes) -> TimestampRequest:
    """Parse a TimeStampReq strictly; every refusal is a TimestampRequestError.

    DER only (one encoding per request), version 1, a SHA-2 imprint of the right length, and
    no extensions: we know none, and RFC 3161 §2.4.1 says to reject what we do not know.
    """
    with converting(
        lambda reason: TimestampRequestError("bad_data_format", reason), "malformed TimeStampReq"
    ):
        check_der(der)
        request = tsp.TimeStampReq.load(der, strict=True)
        request.native  # noqa: B018  (parses every field, so malformed ones fail here)
        if request.dump(force=True) != der:
            raise ValueError("not DER: a field holds its default value")
        if request["version"].native != "v1":
            raise TimestampRequestError(
                "bad_request", f"TimeStampReq version {request['version'].native}, not 1"
            )
        algorithm = request["message_imprint"]["hash_algorithm"]
        name = str(algorithm["algorithm"].native)
        if algorithm["parameters"].native is not None:  # RFC 5754 §2: absent or NULL
            raise TimestampRequestError("bad_alg", f"{name} with parameters other than NULL")
        if present(request["extensions"]):
            oids = ", ".join(ext["extn_id"].dotted for ext in request["extensions"])
            raise TimestampRequestError("unaccepted_extension", f"unsupported extensions: {oids}")
        policy = request["req_policy"]
        return TimestampRequest(
            hash_algorithm=name,
            message_imprint=bytes(request["message_imprint"]["hashed_message"].native),
            nonce=request["nonce"].native,
            cert_req=bool(request["cert_req"].native),
            policy=policy.dotted if present(policy) else None,
        )


@dataclass(frozen=True, slots=True)
class TimestampReply:
    status: str
    token: bytes | None  # the TimeStampToken (a DER ContentInfo) when granted
    text: str  # the statusString lines and the failure info names


def parse_response(der: bytes) -> TimestampReply:
    """Parse a TimeStampResp; its token, if any, is not verified here (see verify_token)."""
    with converting(TimestampError, "malformed TimeStampResp"):
        check_der(der)
        response = TimeStampResp.load(der, strict=True)
        info = response["status"]
        status = info["status"].native
        lines = [str(line) for line in info["status_string"].native or ()]
        failures = sorted(str(bit) for bit in info["fail_info"].native or ())
        token = response["time_stamp_token"]
        token_der = bytes(token.dump()) if present(token) else None
    if not isinstance(status, str):
        raise TimestampError(f"unknown PKIStatus {status}")
    if failures:
        lines.append(f"failure info: {', '.join(failures)}")
    if status in _GRANTED and token_der is None:
        raise TimestampError(f"the TSA answered {status} but sent no token")
    return TimestampReply(status, token_der if status in _GRANTED else None, "; ".join(lines))


def digest_of(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()


def imprint_of(request: TimestampRequest) -> dict[str, Any]:
    # RFC 5754 §2: SHA-2 AlgorithmIdentifiers are generated with absent parameters.
    algorithm = {"algorithm": request.hash_algorithm, "parameters": None}
    return {"hash_algorithm": algorithm, "hashed_message": request.message_imprint}
