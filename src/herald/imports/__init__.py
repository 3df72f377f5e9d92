"""Herald imports."""
