"""Quantization and export of CroSSL encoders and the phone model, the bundle, and parity checks.

Light on purpose: every submodule imports torch / tensorflow / onnx inside its functions.
"""
