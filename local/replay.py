"""Drive the live loop of a replaying stack (``CRIMECAST_AS_OF=YYYY-MM make demo``) as it runs on AWS.

One step is one month of the deployed service: the portal stand-in publishes the month
(``POST /__control/advance``); the daily ingest runs as EventBridge starts it (the template's
``Daily`` schedule: its target function invoked asynchronously with the scheduled event), then
its live evaluation scores the champion on the month and its drift alarm may start a retrain;
the step waits for that retrain; then the monthly retrain runs as EventBridge starts it (the
``Monthly`` schedule, the 2nd at 08:00, 90 minutes after the ingest that brought the month),
and the step waits for it too, so the next month is scored against what it promoted.
Functions are invoked on the stack's embedded Lambda (moto's, at the endpoint the stack
prints) with the stack's admin keys, as EventBridge's role would. ``bench/replay.py`` and the
integration tests use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import re
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request
import uuid

from local.aws.embedded import table_name
from local.aws.template import function_name, load_template
from local.portal.server import advance

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
EMBEDDED_AWS = re.compile(r"embedded AWS at (http://[\d.]+:\d+)")


def embedded_aws(log: str) -> str:
    """The stack's embedded AWS endpoint, from its console output."""
    found = EMBEDDED_AWS.search(log)
    if not found:
        raise RuntimeError("the stack's output names no embedded AWS endpoint")
    return found.group(1)


def schedules(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each ``Schedule`` event of the template: its name -> (its target function, its properties)."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for name, event in (resource["Properties"].get("Events") or {}).items():
            if event["Type"] == "Schedule":
                found[name] = (logical_id, event["Properties"])
    return found


def _cron_hour_minute(template: dict[str, Any], schedule: Any) -> tuple[int, int]:
    expression = schedule
    if isinstance(schedule, dict) and "Ref" in schedule:  # a template parameter: its default
        expression = template["Parameters"][schedule["Ref"]]["Default"]
    minute, hour = str(expression).removeprefix("cron(").split()[:2]
    return int(hour), int(minute)


def scheduled_event(template: dict[str, Any], name: str, day: str) -> tuple[str, dict[str, Any]]:
    """The function EventBridge invokes for schedule ``name`` on ``day`` (YYYY-MM-DD), and the
    event it passes: the schedule's ``Input`` when the template gives one, else EventBridge's
    scheduled event (a new id each time, as each delivery of a rule's firing has)."""
    logical_id, properties = schedules(template)[name]
    target = function_name(template, logical_id)
    if "Input" in properties:
        return target, json.loads(properties["Input"])
    hour, minute = _cron_hour_minute(template, properties["Schedule"])
    return target, {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": f"{day}T{hour:02d}:{minute:02d}:00Z", "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:000000000000:rule/{target}-{name}"], "detail": {},
    }


def next_month_day(month: str, day: int) -> str:
    """``day`` of the month after ``month`` (YYYY-MM): when the month's data is in and retrained."""
    year, number = int(month[:4]), int(month[5:7])
    year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return f"{year:04d}-{number:02d}-{day:02d}"


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
    aws: str | None = None  # its embedded AWS (embedded_aws); needed to run the schedules
    user: str = "admin"
    poll_s: float = 0.5
    template: dict[str, Any] = field(default_factory=lambda: load_template(TEMPLATE))
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
        """``POST /ingest`` (an operator's), until it ended and noted its live evaluation."""
        status, run = call(f"{self.base}/ingest", self.token(), body={"mode": "incremental"}, method="POST")
        if status != 202:
            raise RuntimeError(f"POST /ingest: {status} {run}")
        return self.wait_run(run["run_id"], timeout, then="live_evaluation")

    def run_ids(self, kind: str) -> set[str]:
        return {r["run_id"] for r in self.get(f"/runs?kind={kind}&limit=20")["runs"]}

    def fire_schedule(self, name: str, day: str, kind: str, appear_s: float = 30.0) -> str | None:
        """EventBridge firing schedule ``name`` on ``day``: its target invoked asynchronously with
        its event on the embedded Lambda; the run of ``kind`` it started, or None when it started
        none within ``appear_s`` (e.g. a retrain was running: that one is the month's)."""
        import boto3

        if self.aws is None:
            raise RuntimeError("no embedded AWS endpoint: Replay(aws=embedded_aws(the stack's output))")
        before = self.run_ids(kind)
        target, event = scheduled_event(self.template, name, day)
        client = boto3.client("lambda", endpoint_url=self.aws, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")  # nosec B106 - the stack's admin keys
        answer = client.invoke(FunctionName=target, InvocationType="Event", Payload=json.dumps(event).encode())
        if answer["StatusCode"] != 202:
            raise RuntimeError(f"invoking {target} for schedule {name}: {answer['StatusCode']}")
        deadline = time.monotonic() + appear_s
        while time.monotonic() < deadline:
            new = self.run_ids(kind) - before
            if new:
                return min(new)
            time.sleep(self.poll_s)
        return None

    def step(self, retrain_timeout: float = 3600.0) -> dict[str, Any]:
        """One month as deployed: publish it, the daily ingest and its live evaluation (which may
        start a retrain: waited for), the monthly scheduled retrain (waited for)."""
        started = time.monotonic()
        month = advance(self.portal)["today"]
        ingest_id = self.fire_schedule("Daily", next_month_day(month, 2), "ingest")
        if ingest_id is None:
            raise RuntimeError(f"the daily ingest after {month} started no run")
        ingested = self.wait_run(ingest_id, 600, then="live_evaluation")
        if ingested["status"] != "succeeded":
            raise RuntimeError(f"ingest of {month} failed: {ingested['detail'].get('error')}")
        ingest_s = time.monotonic() - started
        note = ingested["detail"].get("live_evaluation") or {}
        evaluation = self.get(f"/runs/{note['run_id']}")["detail"] if note.get("run_id") else {}
        retrain = evaluation.get("retrain") or {}
        retrains = []
        if retrain.get("started"):
            retrains.append(self._retrain("alarm", retrain["run_id"], retrain_timeout))
        scheduled = self.fire_schedule("Monthly", next_month_day(month, 2), "retrain")
        if scheduled is not None:
            retrains.append(self._retrain("schedule", scheduled, retrain_timeout))
        return {
            "month": month, "stored_last_month": ingested["detail"]["stored"]["last_month"],
            "ingest_run": ingested["run_id"], "evaluation_run": note.get("run_id"), "evaluation_note": note,
            "champion": evaluation.get("version"), "series_evaluated": evaluation.get("series_evaluated"),
            "median_live_mase": evaluation.get("median_live_mase"), "alarm": evaluation.get("alarm"),
            "drift": evaluation.get("drift"), "alarm_retrain": retrain,
            "retrains": retrains, "schedule_started": scheduled is not None,
            "promoted": next((r["version"] for r in reversed(retrains) if (r["promotion"] or {}).get("promoted")), None),
            "ingest_s": round(ingest_s, 1), "step_s": round(time.monotonic() - started, 1),
        }

    def _retrain(self, trigger: str, run_id: str, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        run = self.wait_run(run_id, timeout)
        detail = run["detail"]
        return {"trigger": trigger, "run_id": run_id, "status": run["status"], "reason": detail.get("reason"),
                "skipped": bool(detail.get("skipped")),  # the schedule's, when a retrain already trained on the counts
                "version": detail.get("version"), "promotion": detail.get("promotion"),
                "series_planned": detail.get("series_planned"), "waited_s": round(time.monotonic() - started, 1)}

    def forecasts(self, labels: list[str], month: str) -> dict[str, dict[str, float]]:
        """The serving forecast of ``month`` for each series (label -> yhat, yhat_lower, yhat_upper),
        as ``GET /predict`` serves it (the champion's stored item), read in one query per type
        from the stack's series table rather than one request per series; series without one
        are left out."""
        from crimecast.adapters.series_store import CATALOG, SeriesStore

        wanted, out = set(labels), {}
        with self._embedded():
            store = SeriesStore(table_name("SeriesTable"))
            pointer = store.champion()
            if pointer is None:
                return {}
            version = str(pointer["model_version"])
            catalog = store.get(CATALOG, version)
            for crime_type in json.loads(catalog["payload"])["types"] if catalog else []:
                for item in store.query_type_version(f"{crime_type}#{version}"):
                    if item["series"] not in wanted:
                        continue
                    row = next((f for f in json.loads(item["payload"])["forecast"] if f["month"] == month), None)
                    if row is not None:
                        out[item["series"]] = {k: float(row[k]) for k in ("yhat", "yhat_lower", "yhat_upper")}
        return out

    @contextmanager
    def _embedded(self) -> Iterator[None]:
        """Calls of the crimecast stores made in this context go to the stack's embedded AWS, with its admin keys."""
        from crimecast.adapters import aws

        if self.aws is None:
            raise RuntimeError("no embedded AWS endpoint: Replay(aws=embedded_aws(the stack's output))")
        names = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        before = {name: os.environ.get(name) for name in names}
        os.environ.update(dict(zip(names, (self.aws, "us-east-1", "local", "local"), strict=True)))
        aws.reset_clients()
        try:
            yield
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            aws.reset_clients()
