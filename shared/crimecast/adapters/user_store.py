"""The users table: staff accounts with bcrypt hashes. A table of its own, so that only
the auth function's role can read password hashes; the authorizer, which may read the
table too, reads only the attributes it checks (``get_identity``). The sign-in throttle's
records are elsewhere (:mod:`crimecast.adapters.login_attempt_store`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crimecast.adapters import aws
from crimecast.domain.errors import NotFoundError

IDENTITY_ATTRIBUTES = ("username", "token_version", "roles", "disabled")
# The user the login checked: still there, enabled, with the hash it checked.
_SAME_USER = ("attribute_exists(username) AND password_hash = :hash"
              " AND (attribute_not_exists(disabled) OR disabled <> :true)")


@dataclass(frozen=True)
class UserStore(aws.TableStore):
    def get(self, username: str) -> dict[str, Any] | None:
        """The whole record, password hash included (the login's read)."""
        return self._table.get_item(Key={"username": username}).get("Item")

    def get_identity(self, username: str) -> dict[str, Any] | None:
        """The record without its password hash: only what the authorizer checks (a
        projection, so the hash never leaves DynamoDB on this path)."""
        names = {f"#a{i}": name for i, name in enumerate(IDENTITY_ATTRIBUTES)}  # "roles" is a reserved word
        return self._table.get_item(Key={"username": username}, ProjectionExpression=", ".join(names),
                                    ExpressionAttributeNames=names).get("Item")

    def put(self, user: dict[str, Any], only_if_new: bool = False) -> None:
        """Write a user; with ``only_if_new``, ConflictError if the name is taken."""
        self._put(user, "username" if only_if_new else None)

    def list(self) -> list[dict[str, Any]]:
        """Every user (a scan: the table holds staff accounts, not millions of rows)."""
        return sorted(self._items("scan"), key=lambda u: u["username"])

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

    def confirm_sign_in(self, username: str, password_hash: str, token_version: str | None, *,
                        new_hash: str | None = None) -> bool:
        """After a right password: True while the user is still the one the login checked
        (there, enabled, with that hash and ``token_version``; None: a record from before token
        versions), so no token is issued for a user deleted, disabled, reset or re-roled
        meanwhile. Removes the counters of the former lock per account, and with
        ``new_hash`` (the password at the current bcrypt cost) stores it in the same write."""
        version_condition = "attribute_not_exists(token_version)" if token_version is None else "token_version = :ver"
        values: dict[str, Any] = {":hash": password_hash, ":true": True}
        if token_version is not None:
            values[":ver"] = token_version
        if new_hash:
            values[":new"] = new_hash
        return self._update(username, ("SET password_hash = :new " if new_hash else "") + "REMOVE failed_attempts, locked_until",
                            f"{_SAME_USER} AND {version_condition}", values) is not None

    def set_password(self, username: str, password_hash: str, token_version: str) -> None:
        """A new hash and token version (and the counters of the former lock per account
        removed); NotFoundError when there is no such user."""
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
