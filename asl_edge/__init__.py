"""asl-edge: ASL alphabet classifier from PyTorch training to onnxruntime on the edge.

The code lives in the top-level folders train/, export/, runtime/ and benchmarks/,
installed as asl_edge.train, asl_edge.export, asl_edge.runtime and asl_edge.benchmarks.
"""
__version__ = "0.1.0"
