"""The network simulation lab: sensor nodes, lossy links, drifting clocks, scored predictions."""
