"""What an audit found: the counts of what it checked, and every failure, named."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from custody.errors import UnreadableObjectError

UNREADABLE = "unreadable in the store"
SOURCE_GONE = "the source stopped answering: the audit is incomplete"


@dataclass(frozen=True, slots=True)
class Failure:
    where: str  # object key or "entry N"
    problem: str
    expected: str = ""
    found: str = ""


@dataclass(frozen=True, slots=True)
class SeenCheckpoint:
    """What an auditor remembers between runs: the newest size and root it verified."""

    size: int
    root: bytes


@dataclass
class AuditReport:
    size: int = 0
    root: bytes = b""
    entries: int = 0
    tiles: int = 0
    checkpoints: int = 0
    originals: int = 0
    sidecars: int = 0
    copies: int = 0
    unchecked: list[str] = field(default_factory=list)  # sealed kinds the source cannot read
    not_visible: dict[str, int] = field(default_factory=dict)  # kind -> objects not shown
    timestamps: int = 0  # tokens that verify against their checkpoint
    timestamps_untrusted: int = 0  # of those, TSAs outside the trust anchors given
    timestamps_missing: list[int] = field(default_factory=list)  # sizes without a valid token
    timestamps_checked: bool = False
    failures: list[Failure] = field(default_factory=list)
    _unreadable: set[str] = field(default_factory=set, repr=False)  # keys named unreadable

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, where: str, problem: str, expected: str = "", found: str = "") -> None:
        self.failures.append(Failure(where, problem, expected, found))

    def unreadable(self, error: UnreadableObjectError) -> None:
        """Name an object or listing the store holds but cannot read, once however often
        it is asked for (a failing listing answers every checkpoint's question)."""
        if error.key not in self._unreadable:
            self._unreadable.add(error.key)
            self.fail(error.key, UNREADABLE, error.expected, error.found)


def iter_failures(report: AuditReport) -> Iterator[str]:
    for f in report.failures:
        detail = f" (expected {f.expected}, found {f.found})" if f.expected or f.found else ""
        yield f"{f.where}: {f.problem}{detail}"
