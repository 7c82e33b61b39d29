"""crossl-edge: train CroSSL, export per-modality int8 encoders, fuse latents on the phone.

`export/` and `firmware_bridge/` sit at the repository's top level; committed relative symlinks
`crossl_edge/export` and `crossl_edge/firmware_bridge` make them `crossl_edge.export` and
`crossl_edge.firmware_bridge` for Python and every static tool; the wheel ships them as folders.
"""

__version__ = "0.1.0"
