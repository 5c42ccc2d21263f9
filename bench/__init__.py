"""Benchmarks: each module prints a ratio table of contract against its peers."""
