"""The one error type of the codebook package."""

from __future__ import annotations


class CodebookError(ValueError):
    """Bad input to, or a bad file for, a residual codebook; the message says what and where.

    It subclasses ``ValueError`` so that the ``hymirec`` command prints it as a one-line error
    instead of a traceback.
    """
