"""User-facing errors.

Every failure a user can cause (a wrong name, a malformed eps, missing data, a
corrupt checkpoint) raises a :class:`MedrobustError`. The CLI prints its message
as one line and exits with code 2; library users can catch it. Anything else
that escapes is a bug in medrobust, and keeps its traceback.
"""

from __future__ import annotations


class MedrobustError(Exception):
    """An error whose message is a complete, single-line explanation for the user."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class UnknownNameError(MedrobustError, KeyError):
    """A registry lookup failed (unknown dataset, model, defense or attack)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class DataMissingError(MedrobustError):
    """A dataset is not on disk in any data root."""


class CheckpointError(MedrobustError):
    """A checkpoint file is missing, corrupt, or not a medrobust checkpoint."""


class BadInputError(MedrobustError):
    """A malformed value on the command line or in an API call."""


class DataCorruptError(MedrobustError):
    """A data file is on disk but cannot be read (a truncated or mislabelled image)."""


class StoreError(MedrobustError):
    """The results store cannot be used as it is: its folder is a file, or it is not our SQLite store.

    Raised before anything is written, so a wrong ``--results-dir`` never alters the file there.
    """
