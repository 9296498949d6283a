"""Benchmark stage: asl-bench compares a checkpoint and its ONNX files on accuracy, agreement,
latency, throughput, size and memory, each model measured in its own subprocess."""
