"""Benchmarks: each module exposes main(argv) -> int and writes figures with --json."""
