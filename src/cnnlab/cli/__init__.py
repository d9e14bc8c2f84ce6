"""What every command line goes through: where the configs live, resolvers, the config schema,
one-line errors and exit codes, and DDP inside a Hydra multirun."""
