"""The corpus contract every audio stripper's tests subclass: refused with a reason, or clean."""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import pytest

from custody.metadata.audio_common import PlannedStripper
from tests.custody.metadata import audio_checks as checks

Tags = dict[Path, dict[str, object]]


class CorpusContract:
    """Subclasses name the stripper, the corpus extensions and the refusals they expect."""

    stripper: ClassVar[PlannedStripper]
    extensions: ClassVar[tuple[str, ...]]
    refused: ClassVar[dict[str, str]]  # file name -> words of the expected reason

    @pytest.fixture(scope="class")
    @classmethod
    def outcomes(cls, tmp_path_factory: pytest.TempPathFactory) -> list[checks.Outcome]:
        files = checks.corpus_files(*cls.extensions)
        if not files:
            pytest.skip(f"no {'/'.join(cls.extensions)} files in {checks.CORPUS}")
        out = tmp_path_factory.mktemp(cls.stripper.name)
        return checks.strip_all(cls.stripper, files, out)

    @pytest.fixture(scope="class")
    @classmethod
    def copies(cls, outcomes: list[checks.Outcome]) -> list[checks.Outcome]:
        return [o for o in outcomes if o.copy is not None]

    @pytest.fixture(scope="class")
    @classmethod
    def tags(cls, outcomes: list[checks.Outcome]) -> Tags:
        paths = [o.original for o in outcomes] + [o.copy for o in outcomes if o.copy]
        return checks.exiftool(paths)

    def test_refusals_are_the_expected_ones(self, outcomes: list[checks.Outcome]) -> None:
        refused = {o.original.name: o.reason or "" for o in outcomes if o.copy is None}
        assert sorted(refused) == sorted(self.refused), refused
        wrong = {n: r for n, r in refused.items() if self.refused[n] not in r}
        assert wrong == {}, wrong

    def test_exiftool_and_mutagen_find_no_tags(
        self, copies: list[checks.Outcome], tags: Tags
    ) -> None:
        failures = {}
        for outcome in copies:
            assert outcome.copy is not None
            found = checks.exiftool_leftovers(tags[outcome.copy])
            found += checks.mutagen_leftovers(outcome.copy)
            if found:
                failures[outcome.original.name] = found
        assert failures == {}, failures

    def test_copies_keep_the_content_digest(self, copies: list[checks.Outcome]) -> None:
        failures = []
        for outcome in copies:
            assert outcome.copy is not None
            assert outcome.report is not None
            with outcome.original.open("rb") as original, outcome.copy.open("rb") as copy:
                digests = {
                    self.stripper.content_digest(original),
                    self.stripper.content_digest(copy),
                    outcome.report.content_digest,
                }
            if len(digests) != 1:
                failures.append(outcome.original.name)
        assert failures == [], failures

    def test_copies_have_the_same_stream(self, copies: list[checks.Outcome]) -> None:
        failures = {}
        for outcome in copies:
            assert outcome.copy is not None
            before = checks.stream_parameters(outcome.original)
            after = checks.stream_parameters(outcome.copy)
            if before != after:
                failures[outcome.original.name] = (before, after)
        assert failures == {}, failures

    def test_no_removed_value_is_left(self, copies: list[checks.Outcome], tags: Tags) -> None:
        failures, scanned = {}, 0
        for outcome in copies:
            assert outcome.copy is not None
            values = checks.removed_values(
                outcome.original, tags[outcome.original], tags[outcome.copy]
            )
            slices = checks.pictures(outcome.original)
            scanned += len(values) + len(slices)
            found = checks.leftover_bytes(outcome.copy.read_bytes(), values, slices)
            if found:
                failures[outcome.original.name] = found
        assert failures == {}, failures
        assert scanned > 0 or not any(o.report and o.report.removed for o in copies)

    def test_stripping_a_copy_changes_nothing(self, copies: list[checks.Outcome]) -> None:
        failures = []
        for outcome in copies:
            assert outcome.copy is not None
            data = outcome.copy.read_bytes()
            again = io.BytesIO()
            self.stripper.strip(io.BytesIO(data), again)
            if again.getvalue() != data:
                failures.append(outcome.original.name)
        assert failures == [], failures
