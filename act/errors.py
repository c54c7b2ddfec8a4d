"""The one error type users see: a sentence they can act on, printed by the CLI without a traceback;
and the SIGTERM that stops a command as Ctrl-C does."""


class ActError(Exception):
    """A user-facing failure (bad config, bad data, missing extra). The CLI prints it and exits 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a scheduler ending a job): stops the command as Ctrl-C does, saying the same
    (raised by act/commands/cli.py's handler; `act sweep` then stops its runs at once)."""
