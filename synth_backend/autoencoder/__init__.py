"""3D AutoencoderKL shared by DiffTumor and TumorGen: 1 mm patches, HU window, 4x latents."""
