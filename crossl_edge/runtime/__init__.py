"""The phone-side runtime: model runners, the latent aggregator, transports (numpy + a runtime only)."""
