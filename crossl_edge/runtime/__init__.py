"""The phone-side runtime: model runners, latent aggregator, transports (numpy + a runtime only)."""
