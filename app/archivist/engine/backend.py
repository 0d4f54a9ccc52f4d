"""The core's own plugin: registers the onnxruntime-genai model backend."""
