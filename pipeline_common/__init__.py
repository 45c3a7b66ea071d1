"""Helpers shared by every stage: atomic I/O, config loading, seeded generators, age groups."""
