"""The wire protocol of nodes and phone alike: latent frames, sync beacons, COBS, time base."""
