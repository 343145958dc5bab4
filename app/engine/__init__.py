"""The run engine: runs and their state machine, the executor that claims and runs them, the
checks it runs, run changes and the runboard read model (docs/architecture.md, "Run engine")."""
