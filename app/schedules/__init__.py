"""Schedules: when each schedule fires (pure slot arithmetic) and the timer that fires each slot
exactly once across replicas (docs/schedules.md)."""
