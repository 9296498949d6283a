"""Export stage: checkpoint -> verified FP32 ONNX -> INT8 (static, QDQ) and FP16 models."""
