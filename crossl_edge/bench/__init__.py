"""The `bench` verb's library: per-model latency, memory and end-to-end timing of a bundle."""
