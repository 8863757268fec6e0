"""The one exception type for mistakes a user can fix (bad config, data, checkpoint).

Command-line entry points catch it and print its message without a traceback;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem in the user's input: the message says what, where, and what to do."""
