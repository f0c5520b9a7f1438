"""The one place that talks to S3 and DynamoDB.

The same code runs on moto in tests, on the local stack and on AWS: boto3 picks up
``AWS_ENDPOINT_URL`` by itself, and clients are made lazily, once per warm container,
so importing this module costs nothing and needs no credentials.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
import json
import os
from typing import Any

from .errors import ConfigurationError, ConflictError

CHAMPION = "__champion__"  # series key of the pointer to the serving model version
CATALOG = "__catalog__"  # per version: the series and types it covers
SUMMARY = "__summary__"  # per version: accuracy over every series
CURRENT = "current"


@cache
def _boto3_client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service)


@cache
def _boto3_resource(service: str) -> Any:
    import boto3

    return boto3.session.Session().resource(service)


@cache
def _boto3_table(name: str) -> Any:
    return _boto3_resource("dynamodb").Table(name)


def reset_clients() -> None:
    """Forget cached clients, e.g. when a test points boto3 at a new endpoint."""
    _boto3_client.cache_clear()
    _boto3_resource.cache_clear()
    _boto3_table.cache_clear()


def _put(table: Any, item: dict[str, Any], unique_key: str | None) -> None:
    """Put an item; with ``unique_key``, refuse (ConflictError) to overwrite an existing one."""
    from botocore.exceptions import ClientError

    condition = {"ConditionExpression": f"attribute_not_exists({unique_key})"} if unique_key else {}
    try:
        table.put_item(Item=item, **condition)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise ConflictError(f"{item.get(unique_key or '', 'item')!r} already exists") from None
        raise


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


@dataclass(frozen=True)
class Storage:
    """Names of the bucket and tables; the clients come from the process-wide cache."""

    bucket: str
    series_table: str
    runs_table: str
    users_table: str | None = None

    @classmethod
    def from_env(cls) -> Storage:
        return cls(
            bucket=_required_env("DATA_BUCKET"),
            series_table=_required_env("SERIES_TABLE"),
            runs_table=_required_env("RUNS_TABLE"),
            users_table=os.environ.get("USERS_TABLE"),
        )

    @property
    def s3(self) -> Any:
        return _boto3_client("s3")

    def table(self, name: str) -> Any:
        return _boto3_table(name)  # building a Table resource costs milliseconds: once per name

    # --- S3 -----------------------------------------------------------------------

    def put_bytes(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def put_json(self, key: str, doc: Any) -> None:
        self.put_bytes(key, json.dumps(doc, separators=(",", ":")).encode(), "application/json")

    def get_json(self, key: str) -> Any:
        body = self.get_bytes(key)
        return None if body is None else json.loads(body)

    def copy(self, source_key: str, key: str) -> None:
        """A server-side copy within the bucket (no bytes through this process)."""
        self.s3.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source_key})

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def delete_keys(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        for start in range(0, len(batch), 1000):  # DeleteObjects takes up to 1000 keys
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch[start:start + 1000]],
                                                              "Quiet": True})

    # --- series table: forecasts and metrics per series per model version ---------

    def put_series_items(self, items: Iterable[dict[str, Any]]) -> None:
        with self.table(self.series_table).batch_writer(overwrite_by_pkeys=["series", "version"]) as batch:
            for item in items:
                batch.put_item(Item=item)

    def get_series_item(self, series: str, version: str) -> dict[str, Any] | None:
        return self.table(self.series_table).get_item(Key={"series": series, "version": version}).get("Item")

    def query_type_version(self, type_version: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        table, items, start = self.table(self.series_table), [], None
        while True:
            page = table.query(
                IndexName="ByTypeVersion",
                KeyConditionExpression=Key("type_version").eq(type_version),
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items.extend(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    # --- runs table --------------------------------------------------------------

    def put_run(self, run: dict[str, Any], only_if_new: bool = False) -> None:
        _put(self.table(self.runs_table), run, "run_id" if only_if_new else None)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self.table(self.runs_table).get_item(Key={"run_id": run_id}).get("Item")

    def query_runs(self, kind: str, limit: int) -> list[dict[str, Any]]:
        """The newest runs of one kind."""
        from boto3.dynamodb.conditions import Key

        page = self.table(self.runs_table).query(IndexName="ByKind", KeyConditionExpression=Key("kind").eq(kind),
                                                 ScanIndexForward=False, Limit=limit)
        return list(page["Items"])

    # --- leases: one holder at a time (e.g. one ingest run), kept in the runs table ------
    # A lease item has no ``kind``, so it stays out of the ByKind index that lists runs.

    def take_lease(self, name: str, holder: str, until: int, now: int, steal_from: str | None = None) -> dict[str, Any] | None:
        """Hold ``name`` until ``until`` (epoch s) if it is free, expired, already ``holder``'s
        or ``steal_from``'s. None when taken; otherwise the lease that stands in the way."""
        from botocore.exceptions import ClientError

        condition = "attribute_not_exists(run_id) OR lease_until < :now OR holder = :holder"
        values: dict[str, Any] = {":now": now, ":holder": holder}
        if steal_from:
            condition += " OR holder = :steal"
            values[":steal"] = steal_from
        table = self.table(self.runs_table)
        try:
            table.put_item(Item={"run_id": name, "holder": holder, "lease_until": until, "expires_at": until + 86400},
                           ConditionExpression=condition, ExpressionAttributeValues=values)
            return None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        return table.get_item(Key={"run_id": name}).get("Item") or {"run_id": name, "holder": "?", "lease_until": until}

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up, if ``holder`` still has it."""
        from botocore.exceptions import ClientError

        try:
            self.table(self.runs_table).delete_item(Key={"run_id": name}, ConditionExpression="holder = :holder",
                                                    ExpressionAttributeValues={":holder": holder})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    @property
    def dynamodb(self) -> Any:
        """The low-level DynamoDB client (for Powertools' idempotency store)."""
        return _boto3_client("dynamodb")

    # --- users table --------------------------------------------------------------

    def _users(self) -> Any:
        if not self.users_table:
            raise ConfigurationError("environment variable USERS_TABLE is not set")
        return self.table(self.users_table)

    def get_user(self, username: str) -> dict[str, Any] | None:
        return self._users().get_item(Key={"username": username}).get("Item")

    def put_user(self, user: dict[str, Any], only_if_new: bool = False) -> None:
        _put(self._users(), user, "username" if only_if_new else None)

    def list_users(self) -> list[dict[str, Any]]:
        """Every user (a scan: the table holds staff accounts, not millions of rows)."""
        table, users, start = self._users(), [], None
        while True:
            page = table.scan(**({"ExclusiveStartKey": start} if start else {}))
            users.extend(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return sorted(users, key=lambda u: u["username"])

    def delete_user(self, username: str) -> bool:
        """Remove a user; False when there was none."""
        response = self._users().delete_item(Key={"username": username}, ReturnValues="ALL_OLD")
        return "Attributes" in response

    # --- workflows -----------------------------------------------------------------

    def invoke_async(self, function_name: str, payload: dict[str, Any]) -> None:
        """Invoke a Lambda function without waiting (InvocationType Event: Lambda queues it
        and retries it twice if it fails)."""
        _boto3_client("lambda").invoke(FunctionName=function_name, InvocationType="Event",
                                       Payload=json.dumps(payload).encode())

    def start_workflow(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        """Start a Step Functions execution; the name makes a repeated start a no-op."""
        response = _boto3_client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
        )
        return str(response["executionArn"])
