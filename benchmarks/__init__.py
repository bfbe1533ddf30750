"""Benchmarks: ``python -m benchmarks.<name>``; results go to BENCHMARKS.md."""
