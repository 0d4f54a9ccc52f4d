"""Model recipes: the GGUF to ONNX converter and the builders of the offline default models."""
