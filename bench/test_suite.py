"""How long `make test` takes, step by step (the README's "Tests and CI" figures).

Runs each step of the Makefile's TEST_STEPS in order, as `make test` does, and records
each one's wall time and the total in bench/results/test_suite.json. Run it on a warm
checkout (the virtualenvs, the layer and node modules already made) for the warm figure.

    python bench/test_suite.py
"""

from __future__ import annotations

from pathlib import Path
import re
import subprocess
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.results import write  # noqa: E402 - after the path it is found on

REPO = Path(__file__).resolve().parents[1]


def steps() -> list[str]:
    """TEST_STEPS as the Makefile lists them."""
    match = re.search(r"^TEST_STEPS := (.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    if not match:
        raise SystemExit("Makefile has no TEST_STEPS")
    return match.group(1).split()


def main() -> int:
    seconds: dict[str, float] = {}
    started = time.monotonic()
    for step in steps():
        begun = time.monotonic()
        done = subprocess.run(["make", "--no-print-directory", step], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        seconds[step] = round(time.monotonic() - begun, 1)
        print(f"{step}: {seconds[step]} s", file=sys.stderr, flush=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"make {step} failed")
    write("test_suite", {"steps_s": seconds, "total_s": round(time.monotonic() - started, 1)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
