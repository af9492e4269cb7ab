"""Every corpus file through the sharing-copy pipeline: a clean copy or a reasoned refusal.

The per-format tests check each stripper in depth; this one holds the whole pipeline
(detection, stripper choice, strip, fail-closed checks) to the issue's bar on every file,
with ExifTool as the independent judge.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from custody.metadata.copies import stripper_for, value_needles
from custody.metadata.extract import extract_metadata
from tests.custody.metadata.corpus_copies import (
    CORPUS,
    Outcomes,
    copy_all,
    corpus_files,
    sensitive_tags,
)

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    return copy_all(corpus_files(), tmp_path_factory.mktemp("copies"))


def test_every_file_is_copied_or_refused_with_a_reason(outcomes: Outcomes) -> None:
    total = len(outcomes.released) + len(outcomes.refused) + len(outcomes.unsupported)
    assert total == len(corpus_files())
    assert all(reason.strip() for _, reason in outcomes.refused)
    assert len(outcomes.released) > 350


def test_exiftool_sees_no_sensitive_tag_in_any_copy(outcomes: Outcomes) -> None:
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is not installed (make test-tools installs it)")
    copies = [str(copy) for _, copy, _ in outcomes.released]
    result = subprocess.run(
        ["exiftool", "-a", "-G1", "-s", "-j", *copies],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    leaks = {r["SourceFile"]: sensitive_tags(r) for r in json.loads(result.stdout)}
    assert {k: v for k, v in leaks.items() if v} == {}


def test_no_copy_holds_an_original_value_and_content_is_kept(outcomes: Outcomes) -> None:
    for original, copy, media_type in outcomes.released:
        data = copy.read_bytes()
        values = extract_metadata(original, media_type).sensitive_values
        for needle, name in value_needles(values).items():
            assert needle not in data, (original, name)
        stripper = stripper_for(media_type)
        with original.open("rb") as a, copy.open("rb") as b:
            assert stripper.content_digest(a) == stripper.content_digest(b), original
