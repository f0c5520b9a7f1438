"""The series table: one item per series per model version (its forecast and metrics),
plus per version a catalog and a summary item, and the champion pointer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crimecast.adapters import aws
from crimecast.adapters.limits import check_item
from crimecast.domain.errors import ConflictError

CHAMPION = "__champion__"  # series key of the pointer to the serving model version
CATALOG = "__catalog__"  # per version: the series and types it covers
SUMMARY = "__summary__"  # per version: accuracy over every series
SKIPPED = "__skipped__"  # per version, in parts "<version>#<n>": the series with no model, and why
CURRENT = "current"


@dataclass(frozen=True)
class SeriesStore(aws.TableStore):
    def put_items(self, items: Iterable[dict[str, Any]]) -> None:
        with self._table.batch_writer(overwrite_by_pkeys=["series", "version"]) as batch:
            for item in items:
                batch.put_item(Item=check_item(item, ("series", "version")))

    def get(self, series: str, version: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"series": series, "version": version}).get("Item")

    def query_type_version(self, type_version: str) -> list[dict[str, Any]]:
        """Every item of one type in one version (the ByTypeVersion index), all pages."""
        from boto3.dynamodb.conditions import Key

        items: list[dict[str, Any]] = []
        start = None
        while True:
            page = self._table.query(IndexName="ByTypeVersion", KeyConditionExpression=Key("type_version").eq(type_version),
                                     **({"ExclusiveStartKey": start} if start else {}))
            items.extend(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def champion(self) -> dict[str, Any] | None:
        """The pointer item naming the serving version, or None before the first promotion."""
        return self.get(CHAMPION, CURRENT)

    def set_champion(self, version: str, trained_at: str, replaces: str | None) -> None:
        """Serve ``version`` from now on: one write, so readers see the old or the new, never a mix.

        Conditional on the pointer still naming ``replaces`` (None: no champion yet), so a
        promotion decided against an older champion never overwrites a newer one:
        ConflictError when the pointer moved."""
        from botocore.exceptions import ClientError

        if replaces is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(series)"}
        else:
            condition = {"ConditionExpression": "model_version = :replaces",
                         "ExpressionAttributeValues": {":replaces": replaces}}
        item = check_item({"series": CHAMPION, "version": CURRENT, "model_version": version, "trained_at": trained_at},
                          ("series", "version"))
        try:
            self._table.put_item(Item=item, **condition)
        except ClientError as exc:
            if aws.condition_failed(exc):
                current = (self.champion() or {}).get("model_version")
                raise ConflictError(f"the champion is {current}, not {replaces}: a newer promotion stands") from None
            raise
