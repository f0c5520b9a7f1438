"""Drive the live loop of a replaying stack (``CRIMECAST_AS_OF=YYYY-MM make demo``) over HTTP.

One step: the portal stand-in publishes the next month (``POST /__control/advance``), the
service ingests it (``POST /ingest``, then ``GET /runs/{id}`` until it ends), the ingest's
live evaluation scores the champion on it (its run, ``GET /runs/{id}``), and when that
started a retrain, the step waits for it to end (so the next month is scored against the
model it promoted, if it promoted one). ``bench/replay.py`` and the integration test use it.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

from local.portal import advance


def call(url: str, token: str | None = None, *, form: dict[str, str] | None = None, body: dict | None = None,
         method: str | None = None, timeout: float = 60.0) -> tuple[int, dict[str, Any]]:
    """One request; the status and the JSON answer (errors included)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310  # a stack URL its operator gave
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@dataclass
class Replay:
    base: str  # the stack, http://127.0.0.1:<port>
    portal: str  # its portal stand-in
    password: str
    user: str = "admin"
    poll_s: float = 0.5
    _token: str | None = None
    _token_at: float = 0.0

    def token(self) -> str:
        if self._token is None or time.monotonic() - self._token_at > 600:  # tokens last 30 min by default
            status, answer = call(f"{self.base}/auth/token",
                                  form={"grant_type": "password", "username": self.user, "password": self.password})
            if status != 200:
                raise RuntimeError(f"login failed: {status} {answer}")
            self._token, self._token_at = answer["access_token"], time.monotonic()
        return self._token

    def get(self, path: str) -> dict[str, Any]:
        status, answer = call(f"{self.base}{path}", self.token())
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {answer}")
        return answer

    def wait_run(self, run_id: str, timeout: float, then: str | None = None) -> dict[str, Any]:
        """The run once it ended (and, when it succeeded, once its detail has ``then``: an ingest
        is marked succeeded when it published, and notes its live evaluation after)."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/runs/{run_id}")
            if run["status"] == "failed" or (run["status"] == "succeeded" and (then is None or then in run["detail"])):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']} after {timeout:.0f} s: {run.get('detail')}")
            time.sleep(self.poll_s)

    def ingest(self, timeout: float = 600.0) -> dict[str, Any]:
        status, run = call(f"{self.base}/ingest", self.token(), body={"mode": "incremental"}, method="POST")
        if status != 202:
            raise RuntimeError(f"POST /ingest: {status} {run}")
        return self.wait_run(run["run_id"], timeout, then="live_evaluation")

    def step(self, retrain_timeout: float = 3600.0) -> dict[str, Any]:
        """Publish the next month, ingest it, read its live evaluation, wait for any retrain."""
        started = time.monotonic()
        month = advance(self.portal)["today"]
        ingested = self.ingest()
        if ingested["status"] != "succeeded":
            raise RuntimeError(f"ingest of {month} failed: {ingested['detail'].get('error')}")
        ingest_s = time.monotonic() - started
        note = ingested["detail"].get("live_evaluation") or {}
        evaluation = self.get(f"/runs/{note['run_id']}")["detail"] if note.get("run_id") else {}
        retrain = evaluation.get("retrain") or {}
        retrained = None
        if retrain.get("started"):
            run = self.wait_run(retrain["run_id"], retrain_timeout)
            retrained = {"run_id": run["run_id"], "status": run["status"], "reason": run["detail"].get("reason"),
                         "promotion": run["detail"].get("promotion"), "version": run["detail"].get("version"),
                         "duration_s": round(time.monotonic() - started - ingest_s, 1)}
        return {
            "month": month, "stored_last_month": ingested["detail"]["stored"]["last_month"],
            "ingest_run": ingested["run_id"], "evaluation_run": note.get("run_id"), "evaluation_note": note,
            "champion": evaluation.get("version"), "series_evaluated": evaluation.get("series_evaluated"),
            "median_live_mase": evaluation.get("median_live_mase"), "alarm": evaluation.get("alarm"),
            "drift": evaluation.get("drift"),
            "retrain_started": bool(retrain.get("started")), "retrain_reason": retrain.get("reason"),
            "retrain": retrained, "ingest_s": round(ingest_s, 1), "step_s": round(time.monotonic() - started, 1),
        }
