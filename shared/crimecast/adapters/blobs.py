"""The data bucket: counts, models, run manifests and the area boundaries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import json
import logging
from typing import Any

from crimecast.adapters import aws
from crimecast.domain.errors import ConflictError

logger = logging.getLogger(__name__)

BOUNDARIES_KEY = "boundaries/community_areas.geojson"  # the 77 areas' GeoJSON: stored by ingest, served for the map


@dataclass(frozen=True)
class BlobStore:
    bucket: str

    @property
    def _s3(self) -> Any:
        return aws.client("s3")

    def put_bytes(self, key: str, body: bytes, content_type: str = "application/octet-stream", *,
                  if_match: str | None = None, if_absent: bool = False) -> None:
        """Write an object; ``if_match``: only over the object of that ETag, ``if_absent``: only
        where there is none (S3's conditional writes), else ConflictError: another writer came first."""
        from botocore.exceptions import ClientError

        condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"} if if_absent else {}
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            # 412: the object changed; 409: a concurrent conditional write; NoSuchKey: it was deleted
            if condition and code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409"):
                raise ConflictError(f"s3 object {key} was changed by another writer ({code})") from None
            raise

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        return self.get_tagged(key)[0]

    def _absent(self, key: str) -> bool:
        """Listed and not there (False when the listing is refused too: the refusal stands). The
        key sorts first among the keys it begins, so one listed key tells."""
        from botocore.exceptions import ClientError

        try:
            page = self._s3.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        except ClientError:
            return False
        return not any(item["Key"] == key for item in page.get("Contents", []))

    def get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        """An object's bytes and its ETag (for a conditional write over it); (None, None) if absent.

        S3 answers AccessDenied, not NoSuchKey, for a missing key to a caller who may not list the
        whole bucket, and each function may list only its own prefixes (template.yaml): a listing
        of the key itself then tells a missing key from a refused one."""
        from botocore.exceptions import ClientError

        try:
            found = self._s3.get_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None, None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "AccessDenied":
                if self._absent(key):
                    return None, None
                logger.error("s3 GetObject of %s refused to %s", key, aws.caller())  # not a missing key: a missing grant
            raise
        return found["Body"].read(), found.get("ETag")

    def put_json(self, key: str, doc: Any, *, if_match: str | None = None, if_absent: bool = False) -> None:
        self.put_bytes(key, json.dumps(doc, separators=(",", ":")).encode(), "application/json",
                       if_match=if_match, if_absent=if_absent)

    def get_json(self, key: str) -> Any:
        body = self.get_bytes(key)
        return None if body is None else json.loads(body)

    def copy(self, source_key: str, key: str) -> None:
        """A server-side copy within the bucket (no bytes through this process)."""
        self._s3.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source_key})

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def delete_keys(self, keys: Iterable[str]) -> list[dict[str, str]]:
        """Delete the keys; the ones S3 refused, each ``{"Key", "Code", "Message"}`` (DeleteObjects
        answers 200 and lists a refused key among its Errors, AccessDenied for one outside the
        caller's grants). Logged: callers delete what is no longer needed, a leftover is no failure;
        but a key the caller's role may not delete is a missing grant, an error naming the role."""
        batch = list(keys)
        refused: list[dict[str, str]] = []
        for start in range(0, len(batch), 1000):  # DeleteObjects takes up to 1000 keys
            answer = self._s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in batch[start:start + 1000]], "Quiet": True})
            refused += answer.get("Errors", [])
        denied = [e for e in refused if e.get("Code") == "AccessDenied"]
        if denied:  # S3's entry names neither the action nor the caller: this message does
            logger.error("s3:DeleteObject refused to %s on %d of %d objects: %s", aws.caller(), len(denied), len(batch),
                         ", ".join(str(e.get("Key")) for e in denied[:5]))
        if len(denied) < len(refused):
            logger.warning("%d of %d objects not deleted: %s", len(refused) - len(denied), len(batch),
                           ", ".join([f"{e.get('Key')} ({e.get('Code')})" for e in refused if e not in denied][:5]))
        return refused
