"""What a microcontroller needs from a bundle: generated C (model arrays, op resolver, node loop),
the measured arena, and the real TensorFlow Lite Micro build and run on an emulated Cortex-M4."""
