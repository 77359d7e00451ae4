"""The application layer's error types: one line that says what was wrong and how to fix it."""

from __future__ import annotations

__all__ = ["SettingsError", "StudyError"]


class SettingsError(ValueError):
    """A user error in settings, a file or a name (the command line prints it as ``error: ...``)."""


class StudyError(SettingsError):
    """A study file that cannot run as written (it names where in the file)."""
