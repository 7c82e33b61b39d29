"""Allow `python -m crossl_edge.cli` (and torchrun -m crossl_edge.cli)."""

from crossl_edge.cli import main

main()
