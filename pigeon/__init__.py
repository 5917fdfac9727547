"""Command-line entry point for pigeon. The library lives in ``model``, ``train`` and ``bot``."""
