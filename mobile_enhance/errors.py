"""Errors a user can act on.

Every exception here is a mistake of the user's (a wrong name, a bad file, an input of
the wrong size). The CLI prints its message in one line and exits non-zero, with no
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""

    exit_code = 2


class UnknownNameError(UserError, KeyError):
    """A name (model, loss, dataset, preset) that no registry knows."""

    def __init__(self, kind: str, name: str, known):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known)}")

    def __str__(self):  # KeyError would quote the message
        return self.args[0]


class InputSizeError(UserError, ValueError):
    """An image size that the model's strides cannot take."""
