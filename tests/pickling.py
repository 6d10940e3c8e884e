"""Pickle round trips for the tests that check lrpilot's objects pickle (as worker processes and Ray need).

The bytes are made here from the test's own objects and never leave the process; nothing read from a file
or from outside is ever unpickled (lrpilot itself loads with ``torch.load(weights_only=True)``).
"""

import pickle


def pickled_copy(obj):
    """``obj`` after a pickle round trip in memory."""
    return pickle.loads(pickle.dumps(obj))
