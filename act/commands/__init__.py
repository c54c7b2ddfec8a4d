"""The `act` commands (train, convert, report, issues) and the curves they draw. README: the
section of each command."""
