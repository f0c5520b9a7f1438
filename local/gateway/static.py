"""The web page's files, served at ``/`` as CloudFront serves them from the web bucket."""

from __future__ import annotations

import mimetypes
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"


def web_file(path: str, web: Path = WEB) -> tuple[bytes, str] | None:
    """The file at URL ``path`` (``/``: index.html) and its content type; None outside ``web`` or missing."""
    relative = "index.html" if path in ("", "/") else path.lstrip("/")
    target = (web / relative).resolve()
    if not target.is_relative_to(web.resolve()) or not target.is_file():
        return None
    return target.read_bytes(), mimetypes.guess_type(target.name)[0] or "application/octet-stream"
