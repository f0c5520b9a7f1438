"""The stores of one deployment, built from the environment once per process.

``get_stores()`` is the cached factory every handler and job uses (the way the
aws-lambda-handler-cookbook builds its data-access layer); ``use_stores`` puts other
stores in its place, e.g. tests with a launcher that records instead of invoking.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from crimecast import settings
from crimecast.adapters.blobs import BlobStore
from crimecast.adapters.launcher import AwsLauncher, Launcher
from crimecast.adapters.login_attempt_store import LoginAttemptStore
from crimecast.adapters.run_store import LeaseStore, RunStore
from crimecast.adapters.series_store import SeriesStore
from crimecast.adapters.user_store import UserStore
from crimecast.domain.errors import ConfigurationError


@dataclass(frozen=True)
class Stores:
    blobs: BlobStore
    series: SeriesStore
    runs: RunStore
    leases: LeaseStore
    user_table: str | None = None
    login_attempts_table: str | None = None
    idempotency_table: str | None = None
    launcher: Launcher = field(default_factory=AwsLauncher)

    @classmethod
    def from_settings(cls, config: settings.StoreSettings, launcher: Launcher | None = None) -> Stores:
        return cls(blobs=BlobStore(config.data_bucket), series=SeriesStore(config.series_table),
                   runs=RunStore(config.runs_table), leases=LeaseStore(config.runs_table),
                   user_table=config.users_table,
                   login_attempts_table=config.login_attempts_table, idempotency_table=config.idempotency_table,
                   launcher=launcher or AwsLauncher())

    @property
    def users(self) -> UserStore:
        if not self.user_table:
            raise ConfigurationError("environment variable USERS_TABLE is not set")
        return UserStore(self.user_table)

    @property
    def login_attempts(self) -> LoginAttemptStore:
        if not self.login_attempts_table:
            raise ConfigurationError("environment variable LOGIN_ATTEMPTS_TABLE is not set")
        return LoginAttemptStore(self.login_attempts_table)

    def with_launcher(self, launcher: Launcher) -> Stores:
        return replace(self, launcher=launcher)


_override: Stores | None = None
_built: tuple[settings.StoreSettings, Stores] | None = None


def get_stores() -> Stores:
    """This deployment's stores, built once per process from ``StoreSettings`` (again after
    ``settings.reset()``), unless ``use_stores`` put others in their place."""
    global _built
    if _override is not None:
        return _override
    config = settings.load(settings.StoreSettings)
    if _built is None or _built[0] is not config:
        _built = (config, Stores.from_settings(config))
    return _built[1]


def use_stores(stores: Stores | None) -> Any:
    """Serve ``stores`` from ``get_stores`` from now on (None: the ones built from the environment)."""
    global _override
    _override = stores
    return stores
