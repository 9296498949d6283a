"""One-off measurement scripts behind benchmarks/README.md (not part of asl-bench)."""
