"""emergency: coordinate school drills and real emergencies."""

__version__ = "0.1.0"
