"""crossl-edge: train CroSSL, export per-modality int8 encoders, fuse latents on the phone."""

__version__ = "0.1.0"
