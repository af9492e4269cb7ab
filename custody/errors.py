"""The domain's error tree; `api` maps it to RFC 9457 problems and `cli` to exit codes.

CustodyError
├── DigestHeaderError      a Repr-Digest / Content-Digest header that cannot be parsed
├── DigestMismatchError    the body does not have the digest the client declared
├── UnsupportedAlgorithmError
└── EventError             an event that would break the log's rules (size, fields)
"""

from __future__ import annotations


class CustodyError(Exception):
    """Base of every error the domain raises."""


class DigestHeaderError(CustodyError):
    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"malformed {header} header: {reason}")
        self.header = header
        self.reason = reason


class DigestMismatchError(CustodyError):
    def __init__(self, algorithm: str, declared: str, computed: str) -> None:
        super().__init__(
            f"the body's {algorithm} digest is {computed}, but the client declared {declared}"
        )
        self.algorithm = algorithm
        self.declared = declared
        self.computed = computed


class UnsupportedAlgorithmError(CustodyError):
    def __init__(self, algorithm: str) -> None:
        super().__init__(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm


class EventError(CustodyError):
    """A custody event that would break the log's rules."""
