"""The built Prophet layer: small enough for Lambda, Stan binary executable, no
matplotlib, and Prophet fits and predicts with nothing but the layer on the path.

Runs only where CRIMECAST_LAYER_DIR names a built layer (the folder holding python/):
``make layer-test`` builds it into out/layer/prophet and runs this file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.layer import MODEL_BIN, PLOTTING, fit_in_layer, layer_stats

MAX_UNZIPPED_MIB = 120  # Lambda allows 250 MiB for a function and all its layers

# Skipped test by test (not the whole module at import), so each skip carries the layer marker.
pytestmark = [pytest.mark.layer, pytest.mark.skipif(
    not os.environ.get("CRIMECAST_LAYER_DIR"),
    reason="CRIMECAST_LAYER_DIR is not set: `make layer-test` builds the layer and runs these tests")]


@pytest.fixture(scope="module")
def layer_dir() -> Path:
    path = Path(os.environ["CRIMECAST_LAYER_DIR"]).resolve()
    if not (path / MODEL_BIN).exists():
        pytest.fail(f"CRIMECAST_LAYER_DIR={path} holds no built Prophet layer ({MODEL_BIN} is missing)")
    return path


def test_layer_fits_lambda_size_limit(layer_dir: Path) -> None:
    stats = layer_stats(layer_dir)
    assert stats["unzipped_mib"] <= MAX_UNZIPPED_MIB, stats


def test_stan_model_binary_is_executable(layer_dir: Path) -> None:
    assert os.access(layer_dir / MODEL_BIN, os.X_OK)


def test_no_plotting_packages(layer_dir: Path) -> None:
    site = layer_dir / "python"
    assert not [name for name in PLOTTING if (site / name).exists()]
    assert not list(site.glob("matplotlib*"))


def test_prophet_fits_and_predicts_from_the_layer_alone(layer_dir: Path) -> None:
    result = fit_in_layer(layer_dir)
    assert result["rows"] == 96 + 12
    assert result["finite"]
    assert not result["matplotlib_imported"]
    for module, path in result["modules_from"].items():
        assert path.startswith(str(layer_dir / "python")), f"{module} was imported from {path}, not the layer"
