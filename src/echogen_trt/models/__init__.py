"""Reference Patch-cGAN networks (PyTorch): generator, discriminator, losses."""
