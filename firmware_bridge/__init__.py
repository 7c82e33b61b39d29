"""What a microcontroller needs: latent frame format (spec, Python codec, C99 header), COBS."""
