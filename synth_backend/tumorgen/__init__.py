"""TumorGen (Liu et al.): joint tumor-latent + mask rectified flow from a rough bounding box."""
