"""Playbooks: the YAML format, its validation and the registry of loaded playbooks."""
