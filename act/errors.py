"""The one error type users see: a sentence they can act on, printed by the CLI without a traceback."""


class ActError(Exception):
    """A user-facing failure (bad config, bad data, missing extra). The CLI prints it and exits 2."""
