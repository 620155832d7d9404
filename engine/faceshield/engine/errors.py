"""Typed errors raised at the engine's boundary.

Every error says what to fix. `InvalidInputError` names the offending field so that the
service can turn it into a `google.rpc.BadRequest` field violation without parsing messages.
"""

from __future__ import annotations


class FaceShieldError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidInputError(FaceShieldError, ValueError):
    """A caller-supplied value is unusable. `field` names it (e.g. ``"epsilon"``, ``"image"``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.description = message

    def __reduce__(self):
        # Whole across processes (the folder job's workers, Ray actors), subclasses included,
        # whatever their own __init__ takes.
        return (_rebuild_invalid_input, (self.__class__, self.field, self.description))


def _rebuild_invalid_input(cls: type[InvalidInputError], field: str, message: str) -> InvalidInputError:
    error = cls.__new__(cls)
    InvalidInputError.__init__(error, field, message)
    return error


class ModelLoadError(FaceShieldError):
    """A model file or checkpoint cannot be loaded (missing, corrupt, wrong architecture)."""


class CheckpointMismatchError(ModelLoadError):
    """A state dict does not fit the architecture; lists the offending keys."""

    def __init__(
        self,
        what: str,
        missing: list[str] | tuple[str, ...] = (),
        unexpected: list[str] | tuple[str, ...] = (),
        mismatched: list[str] | tuple[str, ...] = (),
    ):
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)
        parts = []
        for label, keys in (
            ("missing keys", self.missing),
            ("unexpected keys", self.unexpected),
            ("shape mismatches", self.mismatched),
        ):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{label}: {shown}")
        super().__init__(f"{what} does not fit the architecture ({'; '.join(parts)})")
        self._what = what

    def __reduce__(self):
        return (self.__class__, (self._what, self.missing, self.unexpected, self.mismatched))
