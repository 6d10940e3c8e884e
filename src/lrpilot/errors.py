"""The one exception type a user can cause."""


class LRPilotError(ValueError):
    """A problem the user can fix: bad policy text, unknown task, missing data, unreachable store.

    The message names the bad value and the fix; the CLI prints it as one line and exits 2.
    """


class DataError(LRPilotError):
    """A task's data that its model cannot train on (a label outside the model's outputs, an input it does not take,
    a non-finite input), named by its first bad example; a bench stores such a run failed with ``error_kind``
    ``"data"``, trained again once the task's fingerprint changes."""
