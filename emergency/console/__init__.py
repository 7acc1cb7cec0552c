"""The web console (see docs/console.md)."""
