"""Every environment variable the service reads, in one place, typed and checked once.

Each group below is a frozen dataclass whose fields name their variable. ``load(Group)``
reads it once per process (a warm Lambda container) and raises ConfigurationError naming
every missing or malformed variable at once; each function checks the groups it needs at
cold start (``check``), so a misconfigured deployment fails at start-up with that message
instead of answering 500 on first use. Stdlib only: the predict function imports this,
and pydantic-settings would double its cold start.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from functools import cache
import os
from typing import Any, TypeVar, get_args, get_type_hints

from crimecast.domain.drift import DriftRule
from crimecast.domain.errors import ConfigurationError
from crimecast.domain.login_throttle import ThrottleRule

_REQUIRED: Any = object()  # a field without default: its variable must be set
Group = TypeVar("Group")


def env(name: str, default: Any = _REQUIRED) -> Any:
    """A field read from environment variable ``name`` (required unless ``default`` is given)."""
    return field(default=default, metadata={"env": name})


def _convert(raw: str, annotation: Any) -> Any:
    kinds = [a for a in (get_args(annotation) or (annotation,)) if a is not type(None)]
    kind = kinds[0] if kinds else str
    if kind is bool:
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError("must be 1/true/yes or 0/false/no")
    return kind(raw)


def read(group: type[Group], environ: dict[str, str] | None = None) -> Group:
    """``group`` from ``environ`` (default: the process environment), every problem named."""
    environ = dict(os.environ) if environ is None else environ
    hints = get_type_hints(group)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for spec in fields(group):  # type: ignore[arg-type]
        name = spec.metadata["env"]
        raw = environ.get(name)
        if raw is None or raw == "":  # an empty variable is an unset one (a blank template parameter)
            if spec.default is _REQUIRED or spec.default is MISSING:
                problems.append(f"{name} is not set")
            continue
        try:
            values[spec.name] = _convert(raw, hints[spec.name])
        except ValueError as exc:
            problems.append(f"{name}={raw[:40]!r} is not valid ({exc})")
    if problems:
        raise ConfigurationError(f"{group.__name__}: " + "; ".join(problems))
    return group(**values)


@cache
def load(group: type[Group]) -> Group:
    """``group`` read once per process (cleared by ``reset``)."""
    return read(group)


def reset() -> None:
    """Read the environment again on next use (tests, the local stack after provisioning)."""
    load.cache_clear()


def check(*groups: type) -> None:
    """Load each group now, failing with every group's problems together (cold start)."""
    problems = []
    for group in groups:
        try:
            load(group)
        except ConfigurationError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigurationError("the function's environment is incomplete: " + " | ".join(problems))


# --- the groups -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreSettings:
    """Where the data lives (template.yaml's Globals give every function these)."""

    data_bucket: str = env("DATA_BUCKET")
    series_table: str = env("SERIES_TABLE")
    runs_table: str = env("RUNS_TABLE")
    users_table: str | None = env("USERS_TABLE", None)
    login_attempts_table: str | None = env("LOGIN_ATTEMPTS_TABLE", None)
    idempotency_table: str | None = env("IDEMPOTENCY_TABLE", None)


@dataclass(frozen=True)
class UserSettings:
    """The auth function and the authorizer: users and the signing key."""

    users_table: str = env("USERS_TABLE")
    jwt_secret_arn: str = env("JWT_SECRET_ARN")
    token_minutes: float = env("CRIMECAST_TOKEN_MINUTES", 30.0)


@dataclass(frozen=True)
class LoginSettings:
    """The sign-in throttle (crimecast.domain.login_throttle): per client address and account,
    and a bound per account on the attempts from addresses it has not signed in from."""

    login_attempts_table: str = env("LOGIN_ATTEMPTS_TABLE")
    free_attempts: int = env("CRIMECAST_LOCKOUT_ATTEMPTS", 5)
    first_hold_seconds: int = env("CRIMECAST_LOCKOUT_FIRST_SECONDS", 30)
    max_hold_seconds: int = env("CRIMECAST_LOCKOUT_SECONDS", 900)
    new_address_attempts_per_hour: int = env("CRIMECAST_NEW_ADDRESS_ATTEMPTS_PER_HOUR", 100)

    def __post_init__(self) -> None:
        if min(self.free_attempts, self.first_hold_seconds, self.max_hold_seconds,
               self.new_address_attempts_per_hour) < 1 or self.first_hold_seconds > self.max_hold_seconds:
            raise ConfigurationError("LoginSettings: the lockout attempts, seconds and attempts per hour must be "
                                     "1 or more, and CRIMECAST_LOCKOUT_FIRST_SECONDS at most CRIMECAST_LOCKOUT_SECONDS")

    def rule(self) -> ThrottleRule:
        return ThrottleRule(free_attempts=self.free_attempts, first_hold_seconds=self.first_hold_seconds,
                            max_hold_seconds=self.max_hold_seconds,
                            new_address_attempts_per_hour=self.new_address_attempts_per_hour)


@dataclass(frozen=True)
class ApiSettings:
    web_origin: str | None = env("WEB_ORIGIN", None)  # CORS: the page's origin, when it is elsewhere


@dataclass(frozen=True)
class LaunchSettings:
    """How long jobs start: the ingest Lambda invoking itself (on the local stack too, through
    its embedded Lambda service)."""

    function_name: str | None = env("AWS_LAMBDA_FUNCTION_NAME", None)


@dataclass(frozen=True)
class RetrainTarget:
    """Where a retrain starts, for the functions that start one: the state machine (on the
    local stack, the embedded one)."""

    retrain_state_machine_arn: str = env("RETRAIN_STATE_MACHINE_ARN")


@dataclass(frozen=True)
class IdempotencySettings:
    idempotency_table: str = env("IDEMPOTENCY_TABLE")  # Powertools idempotency records of the ingest function


@dataclass(frozen=True)
class PortalSettings:
    """The city's data portal (Socrata)."""

    url: str | None = env("CRIMECAST_SOCRATA_URL", None)
    app_token: str | None = env("CRIMECAST_SOCRATA_APP_TOKEN", None)
    app_token_secret_arn: str | None = env("CRIMECAST_SOCRATA_APP_TOKEN_SECRET_ARN", None)
    page_size: int | None = env("CRIMECAST_SOCRATA_PAGE_SIZE", None)
    stage: str | None = env("STAGE", None)

    def __post_init__(self) -> None:
        # SODA 3 answers only requests with an app token: prod must have one (the 2.1 fallback
        # is for a portal that has not moved yet, not for running without a token).
        if self.stage == "prod" and not self.app_token and not self.app_token_secret_arn:
            raise ConfigurationError("PortalSettings: prod needs a Socrata app token: set "
                                     "CRIMECAST_SOCRATA_APP_TOKEN_SECRET_ARN (template parameter SocrataAppTokenSecretArn)")


@dataclass(frozen=True)
class RetrainOptions:
    """Knobs of a retrain."""

    min_nonzero_months: int = env("CRIMECAST_MIN_NONZERO_MONTHS", 24)  # in the last five years
    backtest_origins: int = env("CRIMECAST_BACKTEST_ORIGINS", 2)  # yearly origins before the last complete month
    horizon: int = env("CRIMECAST_HORIZON", 12)
    forecast_months: int = env("CRIMECAST_FORECAST_MONTHS", 24)
    # On the same data as the champion, a candidate's backtest MASE relative to the seasonal
    # naive's may exceed the champion's by this share (on newer data it is not compared).
    promotion_tolerance: float = env("CRIMECAST_PROMOTION_TOLERANCE", 0.0)
    batch_size: int = env("RETRAIN_BATCH_SIZE", 25)  # series per Distributed Map item
    reconcile: bool = env("CRIMECAST_RECONCILE", True)  # forecasts of levels ending in the same month add up
    # Promote refuses a version missing more than this share of the series the plan listed
    # (untrained: a batch lost, a series failing); the champion keeps serving.
    missing_tolerance: float = env("CRIMECAST_MISSING_SERIES_TOLERANCE", 0.01)
    # One retrain at a time: a lease held by the running run, released when it ends; if its
    # holder died without letting go (the workflow killed, the Catch never ran) it lapses after this.
    lease_seconds: int = env("CRIMECAST_RETRAIN_LEASE_SECONDS", 6 * 3600)
    # Only these series get a model (comma-separated labels, e.g. ``city:ALL,25:ALL``); unset:
    # every series worth one. A replay over files that hold only totals sets it to their series
    # (``local/portal/``): the cross-tabulation its portal stand-in had to make up is not forecast.
    forecast_series: str | None = env("CRIMECAST_FORECAST_SERIES", None)

    def forecast_only(self) -> frozenset[str] | None:
        """The labels of the series this deployment forecasts, or None for every series."""
        if not self.forecast_series:
            return None
        return frozenset(label.strip() for label in self.forecast_series.split(",") if label.strip())


@dataclass(frozen=True)
class LiveThreshold:
    """The drift alarm (``crimecast.domain.drift``): series found moved at false-discovery rate
    ``q`` across series; the alarm sounds on a moved aggregate (area total, citywide type,
    city) or on at least ``min_cells`` moved area x type cells. At q = 0.01 a calm city raises
    it in about 1% of evaluations (``tests/unit/test_drift.py``); the rate was chosen by
    replaying 2019-2026 (``bench/drift_replay.py``), the cells' minimum by the whole-city
    replay (``bench/replay.py``)."""

    q: float = env("CRIMECAST_DRIFT_FDR", 0.01)
    min_cells: int = env("CRIMECAST_DRIFT_MIN_CELLS", 3)

    def __post_init__(self) -> None:
        if not 0 < self.q < 1 or self.min_cells < 1:
            raise ConfigurationError(f"LiveThreshold: CRIMECAST_DRIFT_FDR={self.q} must be in (0, 1) and "
                                     f"CRIMECAST_DRIFT_MIN_CELLS={self.min_cells} at least 1")

    def rule(self) -> DriftRule:
        return DriftRule(q=self.q, min_cells=self.min_cells)


@dataclass(frozen=True)
class PasswordSettings:
    """bcrypt's cost: new hashes use ``bcrypt_rounds``, and a sign-in rehashes a hash of a lower
    cost. ``bcrypt_rounds`` may not be set below ``bcrypt_min_rounds`` (10, OWASP's floor for
    bcrypt); the tests lower both to 4, bcrypt's own floor, for speed."""

    bcrypt_rounds: int = env("CRIMECAST_BCRYPT_ROUNDS", 12)  # about 0.25 s a hash here
    bcrypt_min_rounds: int = env("CRIMECAST_BCRYPT_MIN_ROUNDS", 10)

    def __post_init__(self) -> None:
        if not 4 <= self.bcrypt_min_rounds <= self.bcrypt_rounds <= 31:
            raise ConfigurationError(f"PasswordSettings: CRIMECAST_BCRYPT_ROUNDS={self.bcrypt_rounds} must be at least "
                                     f"CRIMECAST_BCRYPT_MIN_ROUNDS={self.bcrypt_min_rounds}, itself 4 or more, "
                                     "and at most 31")


# What each function checks at cold start.
PREDICT = (StoreSettings, ApiSettings)
EVALUATE = (StoreSettings, ApiSettings, LaunchSettings, RetrainTarget, LiveThreshold, RetrainOptions)
INGEST = (StoreSettings, IdempotencySettings, ApiSettings, LaunchSettings, RetrainTarget, PortalSettings, LiveThreshold,
          RetrainOptions)
RETRAIN = (StoreSettings, ApiSettings, LaunchSettings, RetrainTarget, RetrainOptions)
RETRAIN_STEPS = (StoreSettings, RetrainOptions)  # functions/retrain/steps.py: the state machine's steps
AUTH = (StoreSettings, UserSettings, LoginSettings, ApiSettings, PasswordSettings)
