"""The torch-free runtime: model contract, preprocessing and onnxruntime inference."""
