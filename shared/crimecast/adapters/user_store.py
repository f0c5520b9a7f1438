"""The users table: staff accounts with bcrypt hashes. A table of its own, so that only
the auth function's role can read password hashes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crimecast.adapters import aws


@dataclass(frozen=True)
class UserStore(aws.TableStore):
    def get(self, username: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"username": username}).get("Item")

    def put(self, user: dict[str, Any], only_if_new: bool = False) -> None:
        """Write a user; with ``only_if_new``, ConflictError if the name is taken."""
        self._put(user, "username" if only_if_new else None)

    def list(self) -> list[dict[str, Any]]:
        """Every user (a scan: the table holds staff accounts, not millions of rows)."""
        users: list[dict[str, Any]] = []
        start = None
        while True:
            page = self._table.scan(**({"ExclusiveStartKey": start} if start else {}))
            users.extend(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return sorted(users, key=lambda u: u["username"])

    def delete(self, username: str) -> bool:
        """Remove a user; False when there was none."""
        response = self._table.delete_item(Key={"username": username}, ReturnValues="ALL_OLD")
        return "Attributes" in response

    def update(self, username: str, **fields: Any) -> dict[str, Any] | None:
        """Set some attributes of an existing user in place (one UpdateItem: attributes it
        does not name, such as the lockout counters, are left as they are); the user as
        updated, or None when there was none."""
        from botocore.exceptions import ClientError

        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        try:
            response = self._table.update_item(
                Key={"username": username}, ConditionExpression="attribute_exists(username)", ReturnValues="ALL_NEW",
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except ClientError as exc:
            if aws.condition_failed(exc):
                return None
            raise
        return response["Attributes"]
