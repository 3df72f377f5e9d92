"""Herald store."""
