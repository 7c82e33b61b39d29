"""The wire protocol shared by sensor nodes and the phone: latent frames, sync beacons, COBS, time base."""
