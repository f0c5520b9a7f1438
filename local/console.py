"""The stack's console: one line per event, on stderr, each marked as the stack's."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    print(f"[crimecast] {message}", file=sys.stderr, flush=True)
