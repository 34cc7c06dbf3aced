"""One module per ``harness`` subcommand: ``configure(parser)`` and ``run(args) -> int``."""
