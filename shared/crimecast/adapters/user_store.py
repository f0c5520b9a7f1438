"""The users table: staff accounts with bcrypt hashes. A table of its own, so that only
the auth function's role can read password hashes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crimecast.adapters import aws
from crimecast.domain.errors import NotFoundError

_NOT_LOCKED = "(attribute_not_exists(locked_until) OR locked_until <= :now)"
# The user the login checked: still there, enabled, with the hash it checked.
_SAME_USER = ("attribute_exists(username) AND password_hash = :hash"
              " AND (attribute_not_exists(disabled) OR disabled <> :true)")


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

    def _update(self, username: str, expression: str, condition: str, values: dict[str, Any] | None = None,
                returns: str = "NONE") -> dict[str, Any] | None:
        """One conditional UpdateItem; the attributes asked for, or None when the condition failed."""
        from botocore.exceptions import ClientError

        try:
            response = self._table.update_item(
                Key={"username": username}, UpdateExpression=expression, ConditionExpression=condition,
                ReturnValues=returns, **({"ExpressionAttributeValues": values} if values else {}))
        except ClientError as exc:
            if aws.condition_failed(exc):
                return None
            raise
        return response.get("Attributes", {})

    def record_failure(self, username: str, password_hash: str, *, attempts: int, lock_until: int,
                       now: int) -> str:
        """Count one failed login, atomically (``ADD``), and lock the account when the count
        reaches ``attempts``: locked_until set, counter back to 0. Only the counters are
        written, and only while the user still has the ``password_hash`` the login just
        checked, is enabled and is not locked; so a concurrent delete, disable or password reset is never
        undone, and failures during a lock neither count nor extend it.

        Returns "counted", "locked" (this failure set the lock) or "skipped" (nothing written:
        the user is gone, disabled, has another password, or is locked)."""
        values = {":one": 1, ":hash": password_hash, ":now": now, ":true": True}
        counted = self._update(username, "ADD failed_attempts :one", f"{_SAME_USER} AND {_NOT_LOCKED}",
                               values, returns="UPDATED_NEW")
        if counted is None:
            return "skipped"
        if int(counted["failed_attempts"]) < attempts:
            return "counted"
        # Exactly one of the failures that reached the limit sets the lock (it zeroes the
        # counter, so the others' conditions fail); a success in between cleared the counter.
        locked = self._update(username, "SET locked_until = :until, failed_attempts = :zero",
                              f"{_SAME_USER} AND {_NOT_LOCKED} AND failed_attempts >= :attempts",
                              {":hash": password_hash, ":now": now, ":true": True, ":until": lock_until, ":zero": 0,
                               ":attempts": attempts})
        return "counted" if locked is None else "locked"

    def clear_failures(self, username: str, password_hash: str, *, now: int) -> bool:
        """After a right password: the counters removed, while the user still has that
        password, is enabled and unlocked. False (nothing written) when the user changed
        since the login read it."""
        return self._update(username, "REMOVE failed_attempts, locked_until", f"{_SAME_USER} AND {_NOT_LOCKED}",
                            {":hash": password_hash, ":now": now, ":true": True}) is not None

    def set_password(self, username: str, password_hash: str, token_version: str) -> None:
        """A new hash and token version, and the lockout counters cleared; NotFoundError when
        there is no such user."""
        if self._update(username, "SET password_hash = :hash, token_version = :ver REMOVE failed_attempts, locked_until",
                        "attribute_exists(username)", {":hash": password_hash, ":ver": token_version}) is None:
            raise NotFoundError(f"no user {username!r}")

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
