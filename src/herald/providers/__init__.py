"""Herald providers."""
