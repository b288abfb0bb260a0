"""Phantom grid and noise settings (a frozen dataclass, one per cohort)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.vocabulary import ORGANS

# Structures written as segmentations, in the AbdomenAtlas naming the dataset importer reads.
STRUCTURES = (
    "liver",
    "spleen",
    "kidney_left",
    "kidney_right",
    "pancreas",
    "aorta",
    "postcava",
    "portal_vein_and_splenic_vein",
    "stomach",
    "bowel",
    "vertebrae",
    "body",
)
LESION_ORGANS = ORGANS  # every organ of the vocabulary gets lesions

# Bump when the generator's output for a given (seed, config) changes: resume compares it.
GENERATOR_VERSION = "2"  # 2: LAS-stored affine (anatomy was mirrored in 1)


@dataclass(frozen=True)
class PhantomConfig:
    """Grid of the generated volumes and their noise.

    ``shape`` voxels (x, y, z) and ``spacing`` mm; the field of view is centred on the patient
    (x = 0 midline, y = 0 mid-AP, z = 0 at the volume's centre). Anatomy is defined in mm, so the
    same seed gives the same patient at any spacing. ``noise_std_hu`` is the range the per-case
    noise level (HU std of the correlated noise, on this grid) is drawn from; ``noise_peak_mm``
    is the wavelength (mm) where the in-plane noise power spectrum peaks (soft-tissue kernels
    ~3-5 mm); ``noise_z_mm`` the Gaussian correlation length across slices.
    """

    shape: tuple[int, int, int] = (256, 224, 96)
    spacing: tuple[float, float, float] = (1.5, 1.5, 2.5)
    noise_std_hu: tuple[float, float] = (11.0, 16.0)
    noise_peak_mm: float = 4.0
    noise_z_mm: float = 1.0

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or min(self.shape) < 8:
            raise ValueError(f"shape must be 3 sizes >= 8 voxels, got {self.shape}")
        if len(self.spacing) != 3 or min(self.spacing) <= 0:
            raise ValueError(f"spacing must be 3 positive sizes in mm, got {self.spacing}")
        lo, hi = self.noise_std_hu
        if not 0 <= lo <= hi:
            raise ValueError(
                f"noise_std_hu must be (low, high) with 0 <= low <= high, got {self.noise_std_hu}"
            )
        fov = [n * s for n, s in zip(self.shape, self.spacing, strict=True)]
        if fov[0] < 340 or fov[1] < 300 or fov[2] < 200:
            raise ValueError(
                f"field of view {fov} mm is too small for an abdomen; "
                "use at least 340 x 300 x 200 mm (shape x spacing)"
            )

    @classmethod
    def default(cls) -> PhantomConfig:
        """256 x 224 x 96 voxels at 1.5 x 1.5 x 2.5 mm (384 x 336 x 240 mm field of view)."""
        return cls()

    @classmethod
    def small(cls) -> PhantomConfig:
        """Test preset: 128 x 112 x 48 voxels at 3 x 3 x 5 mm, same field of view (~0.3 s)."""
        return cls(shape=(128, 112, 48), spacing=(3.0, 3.0, 5.0))

    @classmethod
    def preset(cls, name: str) -> PhantomConfig:
        presets = {"default": cls.default, "small": cls.small}
        if name not in presets:
            raise ValueError(f"preset must be one of {sorted(presets)}, got {name!r}")
        return presets[name]()

    def fov_mm(self) -> tuple[float, float, float]:
        return tuple(n * s for n, s in zip(self.shape, self.spacing, strict=True))  # type: ignore[return-value]

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
