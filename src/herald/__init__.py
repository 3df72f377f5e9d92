"""Herald: outbound campaign engine for AI phone calls and WhatsApp."""

__version__ = "0.1.0"
