"""Herald analytics."""
