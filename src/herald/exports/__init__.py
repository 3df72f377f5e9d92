"""Herald exports."""
