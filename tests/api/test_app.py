"""The composition root: what start-up does to the process it runs in."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from api.app import GC_THRESHOLDS, create_app
from api.settings import Settings


@pytest.fixture
def collector() -> Iterator[None]:
    """The garbage collector as it was, afterwards, whatever a test did to it."""
    gc.unfreeze()
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def started(app: FastAPI) -> tuple[tuple[int, int, int], int]:
    """Start the app (its lifespan) and report the collector's thresholds and frozen count."""

    async def run() -> tuple[tuple[int, int, int], int]:
        async with app.router.lifespan_context(app):
            assert app.state.context.engine is not None
            return gc.get_threshold(), gc.get_freeze_count()

    return asyncio.run(run())


def test_a_served_app_freezes_its_start_up_heap_and_collects_young_objects_less_often(
    tmp_path: Path, collector: None
) -> None:
    settings = Settings(data_dir=tmp_path, integrator_enabled=False)
    thresholds, frozen = started(create_app(settings, settle_heap=True))
    assert thresholds == GC_THRESHOLDS
    assert frozen > 10_000  # modules, routes, the composed services
    garbage: list[object] = []
    garbage.append(garbage)  # a cycle made after start-up is still collected
    del garbage
    assert gc.collect() >= 1


def test_an_app_built_for_tests_or_tools_leaves_the_collector_alone(
    tmp_path: Path, collector: None
) -> None:
    before = gc.get_threshold()
    settings = Settings(data_dir=tmp_path, integrator_enabled=False)
    assert started(create_app(settings)) == (before, 0)
