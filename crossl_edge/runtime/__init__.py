"""The phone path: bundle opener, model runners, latent aggregator, transports, `serve` (numpy + a
TFLite or ONNX runtime only; never torch or TensorFlow)."""
