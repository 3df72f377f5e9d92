"""Herald engine."""
