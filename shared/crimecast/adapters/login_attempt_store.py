"""The login attempts table: the sign-in throttle's records, one per (account, client
address) and one per account (address ``*``) for its new-address attempts this hour
(:mod:`crimecast.domain.login_throttle` has the rule). A table of its own: records for any
name a client tries, unknown ones included, expire by TTL, and the users table stays the
users.

Every decision is one conditional write: a record is replaced only while it is the one the
rule was applied to (its ``seq``), and the account-wide count grows only while it is under
its bound, so parallel attempts cannot all pass on one stale read."""

from __future__ import annotations

from dataclasses import dataclass, fields

from crimecast.adapters import aws
from crimecast.domain.login_throttle import ACCOUNT_WIDE, HOUR, AddressRecord, ThrottleRule, signed_in

_RECORD_FIELDS = tuple(f.name for f in fields(AddressRecord))


@dataclass(frozen=True)
class LoginAttemptStore(aws.TableStore):
    def get(self, username: str, address: str) -> AddressRecord | None:
        """The record of this account and address, read strongly consistent (None: none yet)."""
        item = self._table.get_item(Key={"username": username, "address": address}, ConsistentRead=True).get("Item")
        return AddressRecord(**{name: int(item.get(name, 0)) for name in _RECORD_FIELDS}) if item else None

    def replace(self, username: str, address: str, record: AddressRecord, *, read_seq: int, rule: ThrottleRule) -> bool:
        """Write ``record`` while the stored one is still the one read (``read_seq``; 0: there
        was none). False, writing nothing, when another attempt wrote it meanwhile."""
        from botocore.exceptions import ClientError

        condition = ("attribute_not_exists(username)" if read_seq == 0 else "seq = :seq")
        try:
            self._table.put_item(
                Item={"username": username, "address": address, "expires_at": record.expires_at(rule),
                      **{name: getattr(record, name) for name in _RECORD_FIELDS}},
                ConditionExpression=condition, **({"ExpressionAttributeValues": {":seq": read_seq}} if read_seq else {}))
        except ClientError as exc:
            if aws.condition_failed(exc):
                return False
            raise
        return True

    def record_sign_in(self, username: str, address: str, now: int, rule: ThrottleRule) -> None:
        """A right password from this address: its failures and hold cleared, the address
        trusted (:func:`~crimecast.domain.login_throttle.signed_in`). Unconditional, but the
        stored ``seq`` is incremented, so an attempt that read the record before this write
        cannot replace it after."""
        after = signed_in(AddressRecord(), now, rule)
        values = {f":{name}": getattr(after, name) for name in _RECORD_FIELDS if name != "seq"}
        self._table.update_item(
            Key={"username": username, "address": address},
            UpdateExpression="SET " + ", ".join(f"{name} = :{name}" for name in _RECORD_FIELDS if name != "seq")
                             + ", expires_at = :expires_at ADD seq :one",
            ExpressionAttributeValues={**values, ":expires_at": after.expires_at(rule), ":one": 1})

    def count_new_address_attempt(self, username: str, window: int, limit: int) -> bool:
        """Count one attempt from an untrusted address in the account's hour ``window``, while
        that hour's count is under ``limit``; False (nothing written) when it is not."""
        from botocore.exceptions import ClientError

        key = {"username": username, "address": ACCOUNT_WIDE}
        expires = window + 2 * HOUR
        for _ in range(3):  # a new hour's first write can race another's: try the count again
            try:
                self._table.update_item(
                    Key=key, UpdateExpression="ADD attempts :one",
                    ConditionExpression="window_start = :window AND attempts < :limit",
                    ExpressionAttributeValues={":one": 1, ":window": window, ":limit": limit})
                return True
            except ClientError as exc:
                if not aws.condition_failed(exc):
                    raise
            try:  # no count for this hour yet: start it
                self._table.update_item(
                    Key=key, UpdateExpression="SET window_start = :window, attempts = :one, expires_at = :expires",
                    ConditionExpression="attribute_not_exists(window_start) OR window_start < :window",
                    ExpressionAttributeValues={":one": 1, ":window": window, ":expires": expires})
                return limit > 0
            except ClientError as exc:
                if not aws.condition_failed(exc):
                    raise
            item = self._table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
            if int(item.get("window_start", 0)) == window and int(item.get("attempts", 0)) >= limit:
                return False  # this hour's bound is reached
        return False

    def forget(self, username: str) -> int:
        """Drop every record of the account (an admin's unlock); how many there were."""
        from boto3.dynamodb.conditions import Key

        keys = self._items("query", KeyConditionExpression=Key("username").eq(username), ProjectionExpression="username, address")
        with self._table.batch_writer() as batch:
            for key in keys:
                batch.delete_item(Key={"username": key["username"], "address": key["address"]})
        return len(keys)
