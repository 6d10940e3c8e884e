"""The one exception type a user can cause."""


class LRPilotError(ValueError):
    """A problem the user can fix: bad policy text, unknown task, missing data, unreachable store.

    The message names the bad value and the fix; the CLI prints it as one line and exits 2.
    """
