"""``bench/ingest_latency.py`` puts each request in the phase it started in (quiet, the ingest,
the retrain) and counts what did not answer 200 as an error of that phase."""

from __future__ import annotations

import pytest

from tests.conftest import bench_module


@pytest.fixture(scope="module")
def ingest_latency():
    return bench_module("ingest_latency")


def test_each_request_counts_in_the_phase_it_started_in(ingest_latency) -> None:
    timings = [(0.5, 10.0, True), (1.5, 10.0, True), (10.5, 200.0, True), (11.0, 300.0, False), (20.5, 40.0, True)]
    phases = ingest_latency.by_phase(timings, {"quiet": (0, 10), "ingest": (10, 20), "retrain": (20, 30)})
    assert phases["quiet"]["requests"] == 2 and phases["quiet"]["errors"] == 0 and phases["quiet"]["max_ms"] == 10.0
    assert phases["ingest"]["requests"] == 2 and phases["ingest"]["errors"] == 1 and phases["ingest"]["max_ms"] == 300.0
    assert phases["retrain"]["requests"] == 1 and phases["retrain"]["seconds"] == 10


def test_a_phase_with_no_request_is_left_out(ingest_latency) -> None:
    assert "retrain" not in ingest_latency.by_phase([(0.5, 10.0, True)], {"quiet": (0, 10), "retrain": (10, 20)})
