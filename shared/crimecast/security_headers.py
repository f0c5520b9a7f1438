"""The security headers every response carries, defined once.

Read by the local stack (``local/stack.py``) and the fake API of the browser tests for
every answer, by ``crimecast.api.openapi`` for Swagger UI at ``/docs``, and by the template
test, which holds CloudFront's response headers policy (template.yaml,
``WebResponseHeadersPolicy``) to the same Content-Security-Policy.

Standard library only, and no other crimecast module: it sits below every layer, so the
API, the local tools and the fake (which must not need Powertools) can all import it.
"""

from __future__ import annotations

import base64
import hashlib
import re

# The page (web/) has no inline script, style or event handler and never evaluates strings,
# so 'self' is enough; its scripts may still set element.style from JS (CSSOM is not
# governed by style-src). data: images are Swagger UI's (its stylesheet's icons); the page has none.
PAGE_DIRECTIVES: tuple[tuple[str, str], ...] = (
    ("default-src", "'none'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data:"),
    ("connect-src", "'self'"),
    ("font-src", "'self'"),
    ("base-uri", "'none'"),
    ("form-action", "'self'"),
    ("frame-ancestors", "'none'"),
)
STRICT_TRANSPORT_SECURITY = "max-age=63072000; includeSubDomains"  # two years
REFERRER_POLICY = "no-referrer"
CSP = "Content-Security-Policy"
_INLINE = re.compile(r"<(script|style)(\s[^>]*)?>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)


def content_security_policy(*, api_origin: str = "", scripts: tuple[str, ...] = (), styles: tuple[str, ...] = ()) -> str:
    """The page's policy. ``api_origin`` (``https://host``) is the API when it is on another origin
    (on AWS, API Gateway's); ``scripts`` and ``styles`` are extra sources (hashes) for inline blocks."""
    extra = {"connect-src": (api_origin,) if api_origin else (), "script-src": scripts, "style-src": styles}
    return "; ".join(" ".join((name, value, *extra.get(name, ()))) for name, value in PAGE_DIRECTIVES)


def security_headers(policy: str | None = None) -> dict[str, str]:
    """Every header of a response: the CSP (the page's, unless given), HSTS, nosniff, no framing, no referrer.

    HSTS is sent on plain-http localhost too, for parity with CloudFront: browsers ignore it
    there (it only counts over https), so it is harmless."""
    return {
        CSP: policy if policy is not None else content_security_policy(),
        "Strict-Transport-Security": STRICT_TRANSPORT_SECURITY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": REFERRER_POLICY,
    }


def source_hash(text: str) -> str:
    """The CSP source (``'sha256-...'``) that allows one inline block with exactly this content."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def inline_hashes(html: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The hashes of the inline ``<script>`` and ``<style>`` blocks of ``html`` (scripts with ``src`` left out)."""
    scripts: list[str] = []
    styles: list[str] = []
    for tag, attributes, content in _INLINE.findall(html):
        if tag.lower() == "script" and "src=" not in (attributes or "").lower():
            scripts.append(source_hash(content))
        elif tag.lower() == "style":
            styles.append(source_hash(content))
    return tuple(dict.fromkeys(scripts)), tuple(dict.fromkeys(styles))


def policy_for_html(html: str) -> str:
    """The page's policy, also allowing exactly the inline blocks of ``html`` (Swagger UI's)."""
    scripts, styles = inline_hashes(html)
    return content_security_policy(scripts=scripts, styles=styles)
