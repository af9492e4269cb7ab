"""The domain's error tree; `api` maps it to RFC 9457 problems and `cli` to exit codes.

CustodyError
├── DigestHeaderError      a Repr-Digest / Content-Digest header that cannot be parsed
├── DigestMismatchError    the body does not have the digest the client declared
├── UnsupportedAlgorithmError
├── EventError             an event that would break the log's rules (size, fields)
├── NoteError              a malformed signed note or key (c2sp.org/signed-note)
│   ├── SignatureError     a known key's signature does not verify
│   └── UnknownKeyError    no signature is from a known key
├── CheckpointError        a malformed checkpoint, or one for another origin
├── ReceiptError           a malformed receipt (c2sp.org/tlog-proof)
│   └── SubjectMismatchError  the receipt's entry is about other bytes than the file
├── ProofError             a Merkle proof that does not verify (RFC 9162 §2.1.3-2.1.4)
│   ├── InclusionProofError
│   └── ConsistencyProofError
├── TileError              a malformed tlog-tiles path, tile or entry bundle, or a store
│                          whose tiles do not describe the tree they should
├── TimestampError         an RFC 3161 time-stamp token or response that does not verify
├── TimestampRequestError  an RFC 3161 time-stamp request a TSA must reject (failure_info)
├── BundleError            an exhibit bundle that cannot be made or read
├── UnreadableObjectError  an object (or listing) a store holds but the auditor cannot read
└── SourceUnavailableError the audit's source stopped answering at all: the audit ends there
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


class NoteError(CustodyError):
    """A signed note or key that breaks c2sp.org/signed-note or Go's key formats."""


class SignatureError(NoteError):
    def __init__(self, name: str, key_id: int) -> None:
        super().__init__(f"invalid signature for key {name}+{key_id:08x}")
        self.name = name
        self.key_id = key_id


class UnknownKeyError(NoteError):
    def __init__(self, keys: tuple[str, ...]) -> None:
        signed_by = ", ".join(keys) or "nobody"
        super().__init__(f"the note has no signature from a known key (signed by {signed_by})")
        self.keys = keys


class CheckpointError(CustodyError):
    """A checkpoint that breaks c2sp.org/tlog-checkpoint, or that names another origin."""


class ReceiptError(CustodyError):
    """A receipt that breaks c2sp.org/tlog-proof or our rules for the entry it carries."""


class SubjectMismatchError(ReceiptError):
    def __init__(self, expected: str, actual: str | None) -> None:
        super().__init__(f"the receipt's entry is about sha256 {actual}, not the file's {expected}")
        self.expected = expected
        self.actual = actual


class ProofError(CustodyError):
    """A Merkle proof that does not verify (RFC 9162 §2.1.3.2, §2.1.4.2); the message says why."""


class InclusionProofError(ProofError):
    """An inclusion proof that does not show the leaf at that index in that tree."""


class ConsistencyProofError(ProofError):
    """A consistency proof that does not show the new tree extends the old one."""


class TileError(CustodyError):
    """A path, tile or entry bundle that breaks c2sp.org/tlog-tiles, or tiles that disagree."""


class TimestampError(CustodyError):
    """An RFC 3161 time-stamp token or response that does not verify; the message says why."""


class TimestampRequestError(CustodyError):
    """A TimeStampReq a TSA rejects; `failure_info` names the PKIFailureInfo bit (RFC 3161 §2.4.2).

    One of "bad_alg", "bad_request", "bad_data_format", "unaccepted_policy" and
    "unaccepted_extension".
    """

    def __init__(self, failure_info: str, reason: str) -> None:
        super().__init__(reason)
        self.failure_info = failure_info
        self.reason = reason


class BundleError(CustodyError):
    """An exhibit bundle that cannot be made or read (not a bag, a malformed record)."""


class UnreadableObjectError(CustodyError):
    """What an audit source raises for an object it holds but cannot read as an object (a
    symbolic link, a special file, permissions, an I/O error) or a listing that fails: the
    audit names `key` and goes on, where a missing object would be None."""

    def __init__(self, key: str, expected: str, found: str) -> None:
        super().__init__(f"{key}: unreadable in the store (expected {expected}, found {found})")
        self.key = key
        self.expected = expected
        self.found = found


class SourceUnavailableError(CustodyError):
    """An audit source that no longer answers anything (a service gone down mid-audit):
    naming each object after it unreadable would bury the one fact in millions of lines, so
    the audit ends with this failure instead, incomplete."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(
            f"{source} stopped answering (last at {key}: {reason}); the audit is incomplete"
        )
        self.source = source
        self.key = key
        self.reason = reason
