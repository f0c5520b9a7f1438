"""The data bucket: counts, models, run manifests and the area boundaries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import json
from typing import Any

from crimecast.adapters import aws
from crimecast.domain.errors import ConflictError

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
        return self.get_tagged(key)[0]

    def get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        """An object's bytes and its ETag (for a conditional write over it); (None, None) if absent."""
        try:
            found = self._s3.get_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None, None
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

    def delete_keys(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        for start in range(0, len(batch), 1000):  # DeleteObjects takes up to 1000 keys
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch[start:start + 1000]],
                                                               "Quiet": True})
