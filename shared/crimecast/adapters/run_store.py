"""The runs table: one record per ingest, retrain or evaluation run, and the leases that
keep one holder at a time (e.g. one ingest run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crimecast.adapters import aws
from crimecast.adapters.limits import check_item


@dataclass(frozen=True)
class RunStore(aws.TableStore):
    def put(self, run: dict[str, Any], only_if_new: bool = False) -> None:
        """Write a run record; with ``only_if_new``, ConflictError if its id exists."""
        self._put(run, "run_id" if only_if_new else None)

    def replace(self, run: dict[str, Any], revision: int | None) -> bool:
        """Write ``run`` over its stored record if that is still at ``revision`` (None: a record
        written before revisions were kept); the record written carries the next revision.
        False when another writer changed it first: read it again and redo the change, so
        that no writer's change is lost (optimistic concurrency)."""
        from botocore.exceptions import ClientError

        names = {"#revision": "revision"}
        if revision is None:
            expected: dict[str, Any] = {"ConditionExpression": "attribute_exists(run_id) AND attribute_not_exists(#revision)"}
        else:
            expected = {"ConditionExpression": "#revision = :revision", "ExpressionAttributeValues": {":revision": revision}}
        item = check_item({**run, "revision": (revision or 0) + 1}, ("run_id",))
        try:
            self._table.put_item(Item=item, ExpressionAttributeNames=names, **expected)
        except ClientError as exc:
            if aws.condition_failed(exc):
                return False
            raise
        return True

    def get(self, run_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"run_id": run_id}, ConsistentRead=True).get("Item")

    def newest(self, kind: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` runs of one kind (the ByKind index), however many pages they fill."""
        from boto3.dynamodb.conditions import Key

        return self._items("query", limit, IndexName="ByKind", KeyConditionExpression=Key("kind").eq(kind),
                           ScanIndexForward=False)


@dataclass(frozen=True)
class LeaseStore(aws.TableStore):
    """Leases live in the runs table; a lease item has no ``kind``, so it stays out of the
    ByKind index that lists runs."""

    def get(self, name: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"run_id": name}).get("Item")

    def take(self, name: str, holder: str, until: int, now: int, steal_from: str | None = None) -> dict[str, Any] | None:
        """Hold ``name`` until ``until`` (epoch s) if it is free, expired, already ``holder``'s
        or ``steal_from``'s. None when taken; otherwise the lease that stands in the way."""
        from botocore.exceptions import ClientError

        condition = "attribute_not_exists(run_id) OR lease_until < :now OR holder = :holder"
        values: dict[str, Any] = {":now": now, ":holder": holder}
        if steal_from:
            condition += " OR holder = :steal"
            values[":steal"] = steal_from
        try:
            self._table.put_item(Item={"run_id": name, "holder": holder, "lease_until": until, "expires_at": until + 86400},
                                 ConditionExpression=condition, ExpressionAttributeValues=values)
            return None
        except ClientError as exc:
            if not aws.condition_failed(exc):
                raise
        return self.get(name) or {"run_id": name, "holder": "?", "lease_until": until}

    def release(self, name: str, holder: str) -> None:
        """Give the lease up, if ``holder`` still has it."""
        from botocore.exceptions import ClientError

        try:
            self._table.delete_item(Key={"run_id": name}, ConditionExpression="holder = :holder",
                                    ExpressionAttributeValues={":holder": holder})
        except ClientError as exc:
            if not aws.condition_failed(exc):
                raise
