"""Errors a user causes (a bad manifest, a damaged image, ...).

The `tessera` command prints such an error as one line, without a traceback; anything else is a bug and keeps its
traceback. Modules that report user mistakes derive their error classes from `TesseraError`.
"""

from __future__ import annotations


class TesseraError(Exception):
    """A problem the user can fix; `str(error)` is a complete one-line explanation."""
