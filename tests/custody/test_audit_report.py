"""The audit report: every failure named once, printable as one line each."""

from __future__ import annotations

from custody.audit_report import UNREADABLE, AuditReport, iter_failures
from custody.errors import UnreadableObjectError


def test_an_object_unreadable_again_and_again_is_named_once() -> None:
    report = AuditReport()
    error = UnreadableObjectError("checkpoints/", "a listing", "EACCES")
    for _ in range(3):
        report.unreadable(error)
    assert [(f.where, f.problem) for f in report.failures] == [("checkpoints/", UNREADABLE)]
    assert not report.ok


def test_each_failure_is_one_line_naming_where_what_and_the_difference() -> None:
    report = AuditReport()
    assert report.ok
    report.fail("tile/0/000", "hash mismatch", "sha256 ab", "sha256 cd")
    report.fail("entry 7", "not a canonical custody event")
    assert list(iter_failures(report)) == [
        "tile/0/000: hash mismatch (expected sha256 ab, found sha256 cd)",
        "entry 7: not a canonical custody event",
    ]
