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


def test_only_a_200_counts_as_answered_on_a_server_that_closes_each_connection(ingest_latency) -> None:
    """``timed_get`` goes on through a server that closes every connection, and a 401 is an error."""
    import http.client
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    class Closing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's name
            self.send_response(200 if self.headers["Authorization"] == "Bearer good" else 401)
            self.send_header("Connection", "close")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Closing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        answers = []
        for token in ("good", "good", "bad", "good"):
            connection, ms, ok = ingest_latency.timed_get(connection, port, token, "/predict")
            answers.append(ok)
            assert ms >= 0
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    assert answers == [True, True, False, True]
