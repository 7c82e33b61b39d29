"""Errors a user can cause, each with the CLI exit code and one sentence that says what to do."""

from __future__ import annotations


class CrosslError(Exception):
    """Base class: a user-facing failure with a one-line message and an exit code."""

    exit_code: int = 1


class UsageError(CrosslError):
    """Bad input from the user (missing file, wrong shape, unknown name): exit code 2."""

    exit_code = 2


class DataError(UsageError):
    """The data itself is unusable (NaN, malformed file, too short): exit code 2."""


class CheckFailed(CrosslError):
    """A check ran and failed (parity threshold, budget, corrupt artifact): exit code 1."""

    exit_code = 1
