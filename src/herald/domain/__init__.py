"""Herald domain."""
