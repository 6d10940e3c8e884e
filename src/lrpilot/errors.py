"""The one exception type a user can cause."""


class LRPilotError(ValueError):
    """A problem the user can fix: bad policy text, unknown task, missing data, unreachable store.

    The message names the bad value and the fix; the CLI prints it as one line and exits 2.
    """


def clip(value: object, n: int = 80) -> str:
    """``repr(value)`` (``value`` itself when it is text) cut to its first ``n`` characters, for error messages
    that echo an input: a 5 MB policy text is not echoed whole."""
    if not isinstance(value, str):
        text = repr(value)
        return text if len(text) <= n else text[:n] + f"... ({len(text)} characters)"
    return repr(value) if len(value) <= n else repr(value[:n]) + f"... ({len(value)} characters)"


class DataError(LRPilotError):
    """A task's data that its model cannot train on (a label outside the model's outputs, an input it does not take,
    a non-finite input), named by its first bad example; a bench stores such a run failed with ``error_kind``
    ``"data"``, trained again once the task's fingerprint changes."""
