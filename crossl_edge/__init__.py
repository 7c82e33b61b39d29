"""crossl-edge: train CroSSL, export per-modality int8 encoders, fuse latents on the phone.

`export/` and `firmware_bridge/` sit at the repository's top level and ship inside this package
(`crossl_edge.export`, `crossl_edge.firmware_bridge`; see pyproject's package-dir mapping).
"""

from crossl_edge._layout import install_source_layout

__version__ = "0.1.0"

install_source_layout()
