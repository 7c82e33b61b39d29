"""Benchmarks: training throughput, accuracy protocol, export, latency, load (JSON results)."""
