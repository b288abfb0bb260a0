"""DiffTumor (Chen et al., CVPR 2024): latent diffusion conditioned on a masked healthy patch."""
