"""The shapes of the API's answers, per route and status, for its OpenAPI document.

The routes return plain dicts built by the jobs (and the predict function loads no pydantic),
so Powertools documents each only as "an object". These JSON schemas say what the answers
hold: a closed object lists every key the service sends. Documentation only: ``openapi``
imports this module. Checked both ways in the tests: the service's own answers against them
(tests/functions/test_answer_schemas.py), and the browser tests' fake API against them
(tests/infra/test_fake_api_contract.py).
"""

from __future__ import annotations

from typing import Any

from crimecast.domain.months import MONTH_FORMAT

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
MONTH: Schema = {"type": "string", "pattern": f"^{MONTH_FORMAT.pattern}$"}
AREA: Schema = {"type": "integer", "minimum": 1, "maximum": 77}
OPEN_OBJECT: Schema = {"type": "object"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def closed(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with exactly these keys (``optional`` ones may be absent), no other."""
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})},
            "additionalProperties": False}


ERROR: Schema = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": STRING, "message": STRING, "run_id": STRING}}}}
# RFC 6749 section 5.2, the body of /auth/token's errors.
OAUTH_ERROR: Schema = closed({"error": STRING, "error_description": STRING})
# API Gateway's own answer when its authorizer refuses the token (the service never sees the call).
UNAUTHORIZED: Schema = closed({"message": STRING})

GAP = closed({"from": MONTH, "to": MONTH})
HISTORY_ROW = closed({"month": MONTH, "count": NUMBER, "partial": BOOLEAN})
BAND = {"yhat": NUMBER, "yhat_lower": NUMBER, "yhat_upper": NUMBER}
FORECAST_ROW = closed({"month": MONTH, **BAND})
SCORES = {"type": "object", "properties": {k: nullable(NUMBER) for k in ("mae", "mse", "rmse", "r2", "mase", "coverage")},
          "additionalProperties": False}
# Each method scored (model, seasonal_naive, any other) has its scores; the backtest's origins beside them.
METRICS: Schema = {"type": "object", "properties": {"origins": array(STRING), "beats_seasonal_naive": INTEGER},
                   "additionalProperties": SCORES}
# crimecast.domain.comparison.year_comparison: each window's months, the ones a year before, the totals.
CHANGE = {"now": nullable(NUMBER), "before": nullable(NUMBER), "change": nullable(NUMBER), "pct": nullable(NUMBER)}
SPAN = {"from": nullable(MONTH), "to": nullable(MONTH)}
BEFORE = {"before_from": MONTH, "before_to": MONTH}
COMPARISON = closed({"data_through": nullable(MONTH), "last_12": nullable(closed({**SPAN, **BEFORE, **CHANGE})),
                     "year_to_date": nullable(closed({**SPAN, **BEFORE, **CHANGE})), "next_12": nullable(closed({**SPAN, **CHANGE}))})
VERDICT = {"count": NUMBER, **BAND, "direction": {"enum": ["above", "below"]}, "distance": NUMBER, "issued_by": STRING}
UNUSUAL_ROW = closed({"month": MONTH, "z": nullable(NUMBER), **VERDICT})
DATA_SPAN = {"data_through": nullable(MONTH), "data_gaps": array(GAP), "data_note": nullable(STRING)}

PREDICTION = closed({"community_area": nullable(AREA), "area_name": STRING, "crime_type": STRING, "model_version": STRING,
                     "trained_at": STRING, **DATA_SPAN, "metrics": METRICS, "history": array(HISTORY_ROW),
                     "forecast": array(FORECAST_ROW), "comparison": COMPARISON, "unusual": array(UNUSUAL_ROW)})
MAP_AREA = closed({"community_area": AREA, "name": STRING, **BAND, "last_year": nullable(NUMBER),
                   "change_pct": nullable(NUMBER), "data_through": nullable(MONTH), "data_gaps": array(GAP), "rank": INTEGER})
MAP = closed({"crime_type": STRING, "month": nullable(MONTH), "model_version": STRING, **DATA_SPAN, "areas": array(MAP_AREA),
              "missing": array(closed({"community_area": AREA, "name": STRING, "reason": STRING}))})
ALERT = closed({"series": STRING, "community_area": nullable(AREA), "area_name": STRING, "crime_type": STRING, "month": MONTH,
                "z": nullable(NUMBER), **VERDICT, "rank": INTEGER})
ALERTS = closed({"crime_type": nullable(STRING), "month": nullable(MONTH), "model_version": STRING, "months": array(MONTH),
                 "band_level": NUMBER, "note": STRING, "series_checked": INTEGER, "outside_band": INTEGER,
                 "expected_by_chance": NUMBER, "false_discovery_rate": nullable(NUMBER), "above": INTEGER, "below": INTEGER,
                 "no_earlier_forecast": INTEGER, "no_data": INTEGER, "alerts": array(ALERT)})
CATALOG = closed({"model_version": STRING, "types": array(STRING), "series": array(STRING),
                  "skipped": array(closed({"series": STRING, "reason": STRING}))})
EVALUATION = {"oneOf": [
    closed({"model_version": STRING, "summary": OPEN_OBJECT}),
    closed({"model_version": STRING, "series": STRING, "community_area": nullable(AREA), "crime_type": STRING,
            "trained_at": STRING, **DATA_SPAN, "metrics": METRICS, "live": nullable(OPEN_OBJECT)}),
]}
RUN = closed({"run_id": STRING, "kind": {"enum": ["ingest", "retrain", "evaluate", "promote"]},
              "status": {"enum": ["queued", "running", "succeeded", "failed"]}, "started_at": STRING,
              "finished_at": nullable(STRING), "detail": OPEN_OBJECT},
             {"error_detail": STRING, "failure_details": {}})
BACKTEST = closed({k: nullable(NUMBER) for k in ("series", "median_mase", "median_mae", "coverage", "share_beating_seasonal_naive")})
MODELS = closed({"champion": nullable(STRING), "versions": array(closed({
    "version": STRING, "serving": BOOLEAN, "promoted": nullable(OPEN_OBJECT), "series": INTEGER, "types": INTEGER,
    "backtest": nullable(BACKTEST), "live": nullable(OPEN_OBJECT), "problem": nullable(STRING)}))})
USER = closed({"username": STRING, "roles": array({"enum": ["viewer", "admin"]})})
GEOJSON: Schema = {"type": "object", "required": ["type", "features"],
                   "properties": {"type": {"const": "FeatureCollection"}, "features": array(OPEN_OBJECT)}}


def json_answer(description: str, schema: Schema, csv: bool = False) -> dict[str, Any]:
    """A JSON answer (``csv``: or, when asked, the same as CSV text)."""
    content = {"application/json": {"schema": schema}, **({"text/csv": {"schema": STRING}} if csv else {})}
    return {"description": description, "content": content}


# (method, path) -> {status: response}; a status not listed here is Powertools' own.
ANSWERS: dict[tuple[str, str], dict[int, dict[str, Any]]] = {
    ("post", "/auth/token"): {
        200: json_answer("a bearer token", closed({"access_token": STRING, "token_type": {"const": "bearer"},
                                                   "expires_in": INTEGER, "scope": STRING})),
        400: json_answer("RFC 6749 invalid_request or unsupported_grant_type", OAUTH_ERROR),
        401: json_answer("RFC 6749 invalid_grant: wrong name or password, or an address the sign-in throttle holds",
                         OAUTH_ERROR)},
    ("get", "/auth/me"): {200: json_answer("the caller", USER)},
    ("post", "/auth/logout"): {200: json_answer("the caller's tokens are revoked, on every device",
                                                closed({"username": STRING, "logged_out": STRING}))},
    ("post", "/auth/users"): {201: json_answer("the user added", USER)},
    ("delete", "/auth/users/{name}"): {204: {"description": "the user is removed"}},
    ("patch", "/auth/users/{name}"): {200: json_answer("the user as changed", closed(
        {"username": STRING, "roles": array({"enum": ["viewer", "admin"]}), "disabled": BOOLEAN}))},
    ("get", "/health"): {200: json_answer("the function answers", closed({"status": {"const": "ok"}}))},
    ("get", "/predict"): {200: json_answer("the series (format=csv: its months as CSV)", PREDICTION, csv=True)},
    ("get", "/predict/map"): {200: json_answer("every area (format=csv: as CSV)", MAP, csv=True)},
    ("get", "/alerts"): {200: json_answer("the series judged and the unusual ones", ALERTS)},
    ("get", "/catalog"): {200: json_answer("the serving version's series", CATALOG)},
    ("get", "/boundaries"): {200: {"description": "the community areas", "content": {
        "application/geo+json": {"schema": GEOJSON}}}},
    ("get", "/evaluate"): {200: json_answer("one series' accuracy, or the summary over all", EVALUATION)},
    ("get", "/runs"): {200: json_answer("the runs, newest first", closed({"runs": array(RUN)}))},
    ("get", "/runs/{run_id}"): {200: json_answer("the run", RUN)},
    ("get", "/models"): {200: json_answer("every model version, newest first", MODELS)},
    ("post", "/models/{version}/promote"): {200: json_answer("the promote run, ended", RUN)},
    ("post", "/evaluate"): {200: json_answer("the live evaluation's outcome", OPEN_OBJECT)},
    ("post", "/ingest"): {202: json_answer("the queued ingest run (follow it at GET /runs/{run_id})", RUN)},
    ("post", "/retrain"): {202: json_answer("the queued retrain run (follow it at GET /runs/{run_id})", RUN)},
}
# Routes API Gateway serves without a token: the others may answer its 401.
PUBLIC = {("post", "/auth/token"), ("get", "/health")}
# The statuses of the service's errors (crimecast.api.STATUS_BY_ERROR and its 500) on every route; its 400
# where a query value is checked (QUERY_CHECKED) or a body is read (openapi.BODY_ERRORS).
ERROR_STATUSES = (403, 404, 409, 500)
ERRORS = json_answer("an error: its code and a message fit to show", ERROR)
VALIDATION_ERROR = json_answer("a parameter or the body is not valid (code validation_error)", ERROR)
QUERY_ERROR = json_answer("a query value is malformed (code invalid_request)", ERROR)
QUERY_CHECKED = {("get", "/predict"), ("get", "/predict/map"), ("get", "/alerts")}
NO_TOKEN = json_answer("no valid bearer token (API Gateway's authorizer; the body is API Gateway's)", UNAUTHORIZED)


def responses_of(method: str, path: str) -> dict[int, dict[str, Any]] | None:
    """Every documented answer of one operation (None for a route not described here): its
    successes, the 422 and every other error in the API's error body, and the authorizer's 401."""
    if (method, path) not in ANSWERS:
        return None
    found: dict[int, dict[str, Any]] = {**ANSWERS[(method, path)]}
    if path == "/auth/token":  # its errors are RFC 6749's, all listed
        return found
    found |= dict.fromkeys(ERROR_STATUSES, ERRORS) | {422: VALIDATION_ERROR}
    if (method, path) in QUERY_CHECKED:
        found[400] = QUERY_ERROR
    if (method, path) not in PUBLIC:
        found[401] = NO_TOKEN
    return found
