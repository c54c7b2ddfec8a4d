"""The `act` commands (train, convert, report, issues, sweep): each parses and calls what lies below
(a run's curves, bank and titles are the run's: act/run/). docs/commands.md, which links each command's
page."""
