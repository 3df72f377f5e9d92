"""HTTP: provider webhooks into the inbox, health, and (next) the Altur-compatible REST API."""
