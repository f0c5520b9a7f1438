"""Trained models kept on disk between ``make demo`` starts.

The embedded AWS forgets everything when the stack stops, and training every series
of the city takes minutes. When the counts the stack loaded and the model's code and
settings are the same as at an earlier start, the champion version that start trained
is written back (its series items and model files) instead of training again.

The cache key is a fingerprint of exactly what training reads: the stored counts file
and the series' own starts and ends, the retrain options, and the source of the domain
package, of the retrain job and of this module. Any change to one of them trains anew.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from decimal import Decimal
import gzip
import hashlib
import io
import json
import os
from pathlib import Path
import shutil
import tarfile
from typing import Any

from crimecast import settings
from crimecast.adapters.series_store import CATALOG, SKIPPED, SUMMARY
from crimecast.adapters.stores import Stores
from crimecast.jobs import counts, forecasts

REPO = Path(__file__).resolve().parents[1]
CACHE_ENV = "CRIMECAST_MODEL_CACHE"
KEEP = 2  # fingerprints kept; older ones are deleted
_CODE = [*sorted((REPO / "shared" / "crimecast" / "domain").glob("*.py")),
         REPO / "shared" / "crimecast" / "jobs" / "retrain.py", REPO / "shared" / "crimecast" / "jobs" / "forecasts.py",
         Path(__file__)]  # what is cached, too


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, REPO / "out" / "model-cache"))


def fingerprint(stores: Stores) -> str:
    """What a retrain's result depends on: the counts, the options, the model's code."""
    pointer = counts.current_manifest(stores)
    if pointer is None:
        raise ValueError("no counts stored yet: nothing to fingerprint")
    digest = hashlib.sha256()
    digest.update(stores.blobs.get_bytes(pointer["counts_key"]) or b"")
    digest.update(json.dumps([pointer.get("partial_month"), pointer.get("series_starts"), pointer.get("series_ends"),
                              pointer.get("series_gaps")], sort_keys=True).encode())
    digest.update(json.dumps(asdict(settings.load(settings.RetrainOptions)), sort_keys=True).encode())
    for path in _CODE:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def save(stores: Stores, key: str, version: str) -> Path:
    """Write ``version`` (its items and model files) under ``key``; keeps the newest few keys."""
    catalog = forecasts.version_catalog(stores, version)
    items = [i for t in catalog["types"] for i in stores.series.query_type_version(f"{t}#{version}")]
    items += [i for name in (CATALOG, SUMMARY) if (i := stores.series.get(name, version))]
    items += [i for i in stores.series.versions(SKIPPED) if str(i["version"]).startswith(f"{version}#")]
    target = cache_dir() / key
    partial = target.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "items.json.gz").write_bytes(gzip.compress(json.dumps({"version": version, "items": items},
                                                                     default=_plain).encode(), 1))
    with tarfile.open(partial / "models.tar.gz", "w:gz", compresslevel=1) as archive:
        for blob_key in stores.blobs.list_keys(f"models/{version}/"):
            body = stores.blobs.get_bytes(blob_key) or b""
            info = tarfile.TarInfo(blob_key)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)  # whole or absent: a start that died while saving leaves no half cache
    _drop_old(key)
    return target


def restore(stores: Stores, key: str) -> str | None:
    """Serve the version cached under ``key`` again; its version id, or None when there is none."""
    source = cache_dir() / key
    if not (source / "items.json.gz").is_file():
        return None
    doc = json.loads(gzip.decompress((source / "items.json.gz").read_bytes()))
    with tarfile.open(source / "models.tar.gz", "r:gz") as archive:
        blobs = [(m.name, archive.extractfile(m).read()) for m in archive.getmembers() if m.isfile()]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: stores.blobs.put_bytes(kv[0], kv[1], "application/json"), blobs))
    stores.series.put_items(doc["items"])
    trained_at = next((i["trained_at"] for i in doc["items"] if "trained_at" in i), None)
    current = (stores.series.champion() or {}).get("model_version")  # on a fresh stack: none
    forecasts.promote(stores, doc["version"], trained_at or "", replaces=current)
    return doc["version"]


def _drop_old(current: str) -> None:
    entries = sorted((p for p in cache_dir().iterdir() if p.is_dir() and p.name != current),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP - 1:]:
        shutil.rmtree(old, ignore_errors=True)
