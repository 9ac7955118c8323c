"""ONNX export of the network stages and their onnxruntime runtime."""
