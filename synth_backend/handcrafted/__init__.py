"""Hand-crafted tumor synthesis (Hu et al., CVPR 2023): ellipsoid shapes, noise texture, HU drop."""
