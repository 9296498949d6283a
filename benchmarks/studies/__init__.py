"""One-off measurement scripts behind benchmarks/RESULTS.md (not part of asl-bench)."""
