"""Errors that map onto rnnperf's exit codes.

Exit codes are part of the API (scripts and CI gates branch on them), so each user-facing failure
is one exception class with one code, and the CLI turns any of them into one line on stderr:

* 1 ``CheckFailed``   a check ran and failed (parity mismatch, NaN result, benchmark regression)
* 2 ``ConfigError``   bad usage or configuration (flags, rc files, shapes, labels, data)
* 3 ``Unavailable``   the requested engine or device is not available on this machine
"""

from __future__ import annotations


class RnnperfError(Exception):
    """Base class: ``str(err)`` is the one line shown to the user."""

    exit_code = 1


class CheckFailed(RnnperfError):
    exit_code = 1


class ConfigError(RnnperfError, ValueError):
    exit_code = 2


class Unavailable(RnnperfError):
    exit_code = 3


#: what ``str.splitlines`` (and so a reader of stderr) takes for the end of a line
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def single_line(text: str) -> str:
    """``text`` on one line: line breaks a user typed (a flag value, a file name) shown as
    ``\\n``, so an error message stays the one line the exit-code API promises."""
    text = str(text)
    for char in LINE_BREAKS:
        text = text.replace(char, repr(char)[1:-1])
    return text


def one_line(exc: BaseException) -> str:
    """Collapse an exception into a single line (workers report errors this way)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, RnnperfError):
        text = f"{type(exc).__name__}: {text}"
    return text[:500]
