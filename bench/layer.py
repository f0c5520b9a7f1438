"""The Prophet layer as Lambda would see it, printed as JSON: unzipped size (Lambda allows
250 MiB for a function and its layers; the target here is <= 120), file count, whether
the Stan model binary is executable, and a Prophet fit + predict of a 96-month series
run by the bare python3.12 with nothing but the layer on its path.

Builds the layer into out/layer/prophet first (``make layer``) unless it is there;
``--rebuild`` builds it anew.

Usage: python bench/layer.py [--rebuild] [--layer-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / "out" / "layer" / "prophet"
MODEL_BIN = Path("python/prophet/stan_model/prophet_model.bin")
MIB = 1024 * 1024
# Imported by nothing in the layer; their presence means the stripping did not happen.
PLOTTING = ("matplotlib", "PIL", "fontTools", "kiwisolver", "contourpy")

# Run in the child interpreter: fit + predict of a seasonal 96-month series; prints JSON.
FIT_SCRIPT = r"""
import json, logging, sys, time
started = time.perf_counter()
import numpy as np
import pandas as pd
import prophet
imported = time.perf_counter()
logging.getLogger("cmdstanpy").disabled = True
months = pd.date_range("2016-01-01", periods=96, freq="MS")
rng = np.random.default_rng(7)
y = rng.poisson(100 * (1 + 0.25 * np.sin(2 * np.pi * (months.month - 4) / 12)))
model = prophet.Prophet(weekly_seasonality=False, daily_seasonality=False)
model.fit(pd.DataFrame({"ds": months, "y": y}))
forecast = model.predict(model.make_future_dataframe(periods=12, freq="MS"))
done = time.perf_counter()
print(json.dumps({
    "import_s": round(imported - started, 3),
    "fit_predict_s": round(done - imported, 3),
    "rows": len(forecast),
    "finite": bool(np.isfinite(forecast[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()),
    "matplotlib_imported": "matplotlib" in sys.modules,
    "modules_from": {m: sys.modules[m].__file__ for m in ("numpy", "pandas", "prophet", "cmdstanpy")},
}))
"""


def base_python312() -> Path:
    """The python3.12 interpreter itself (not a virtualenv's), whose site-packages the child skips anyway."""
    candidates = [Path(sys.base_prefix) / "bin" / "python3.12"] if sys.version_info[:2] == (3, 12) else []
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(root.glob("versions/3.12*/bin/python3.12"))
    found = shutil.which("python3.12")
    candidates += [Path(found)] if found else []
    for candidate in candidates:
        try:
            version = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                                     capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if version.stdout.strip() == "True":
            return candidate
    raise FileNotFoundError("no python3.12 interpreter found (the Lambda runtime's version)")


def build(layer_dir: Path, rebuild: bool) -> float | None:
    """Build the layer when missing (or asked); seconds taken, None when reused."""
    if (layer_dir / MODEL_BIN).exists() and not rebuild:
        return None
    started = time.perf_counter()
    shutil.rmtree(layer_dir, ignore_errors=True)
    layer_dir.mkdir(parents=True)
    subprocess.run(["make", "--no-print-directory", "-C", str(REPO / "layers" / "prophet"), "build-ProphetLayer",
                    f"ARTIFACTS_DIR={layer_dir}", f"PYTHON312={base_python312()}"], check=True, stdout=subprocess.DEVNULL)
    (layer_dir / ".built").touch()  # the stamp of `make layer`
    return round(time.perf_counter() - started, 1)


def layer_stats(layer_dir: Path) -> dict[str, Any]:
    files = [p for p in layer_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    site = layer_dir / "python"
    model_bin = layer_dir / MODEL_BIN
    return {
        "layer_dir": str(layer_dir),
        "unzipped_mib": round(sum(p.stat().st_size for p in files) / MIB, 1),
        "files": len(files),
        "model_bin_executable": model_bin.exists() and os.access(model_bin, os.X_OK),
        "plotting_packages": [name for name in PLOTTING if (site / name).exists()],
    }


def fit_in_layer(layer_dir: Path, timeout: float = 300) -> dict[str, Any]:
    """Fit + predict in a fresh python3.12 whose only packages are the layer's.

    ``-S`` skips site (so no site-packages, user or global), PYTHONPATH is the layer's
    python/ folder as on Lambda (/opt/python), and HOME points at a folder that does not
    exist, as nothing may be written outside TMPDIR there.
    """
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(layer_dir / "python"), "TMPDIR": tmp,
               "HOME": str(Path(tmp) / "no-home"), "LANG": "C.UTF-8"}
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # keep the machine's numpy safety settings
            if name in os.environ:
                env[name] = os.environ[name]
        done = subprocess.run([str(base_python312()), "-S", "-c", FIT_SCRIPT], capture_output=True, text=True,
                              env=env, timeout=timeout, cwd=tmp)
    if done.returncode != 0:
        raise RuntimeError(f"fit in the layer failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true", help="build the layer even if it is there")
    parser.add_argument("--layer-dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    layer_dir = args.layer_dir.resolve()
    from results import write  # here, not at the top: tests import this module as bench.layer

    build_s = build(layer_dir, args.rebuild)
    result = {"build_s": build_s, **layer_stats(layer_dir), "target_mib": 120}
    fit = fit_in_layer(layer_dir)
    result |= {key: fit[key] for key in ("import_s", "fit_predict_s", "rows", "finite", "matplotlib_imported")}
    result["all_from_layer"] = all(path.startswith(str(layer_dir)) for path in fit["modules_from"].values())
    write("layer", result)


if __name__ == "__main__":
    main()
