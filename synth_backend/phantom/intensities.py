"""Tissue attenuation table for the phantom: contrast-enhanced CT, portal-venous phase (~70 s).

Each :class:`Tissue` gives the mean HU a large homogeneous region of that tissue has *before*
noise, the amplitude (HU, one standard deviation) of its own low-frequency texture, and where
the number comes from. Values are single representative points chosen inside the ranges the
sources report; real scans vary with contrast dose, timing, kVp and patient.

Sources (short keys used in the table):

- ``bae2010``: Bae KT. Intravenous contrast medium administration and scan timing at CT.
  Radiology 2010;256(1):32-61. Unenhanced liver ~55-65 HU, portal-venous hepatic enhancement
  ~+50 HU; aortic and portal-venous opacification in the portal-venous phase ~150-200 HU.
- ``yuh1999``: Yuh BI, Cohan RH. Different phases of renal enhancement: role in detecting and
  characterizing renal masses during helical CT. AJR 1999;173(3):747-755. Cortex brighter than
  medulla until the nephrographic phase (~80-100 s); both ~120-200 HU.
- ``fletcher2003``: Fletcher JG et al. Pancreatic malignancy: value of arterial, pancreatic and
  hepatic phase imaging with multi-detector row CT. Radiology 2003;229(1):81-90. Normal pancreas
  ~100-130 HU in the pancreatic/portal phases; adenocarcinoma hypo-attenuating.
- ``pickhardt2013``: Pickhardt PJ et al. Opportunistic screening for osteoporosis using abdominal
  CT scans obtained for other indications. Ann Intern Med 2013;158(8):588-595. L1 trabecular
  attenuation; >160 HU in most adults with normal bone density.
- ``bushberg2012``: Bushberg JT et al. The Essential Physics of Medical Imaging, 3rd ed., 2012:
  air -1000, lung ~-850, fat ~-100, water 0, soft tissue 40-60 HU, bone several hundred to
  >1000 HU.
- ``ts_example``: measured here on ``shared/data/totalseg_example/example_ct_dicom.nii.gz``
  (contrast-enhanced, 0.98 x 0.98 x 2 mm) inside its TotalSegmentator labels eroded by 2 voxels:
  liver 91 +- 19, spleen 82 +- 17, aorta 164, portal/splenic vein 140 +- 13, IVC 98 +- 13,
  paraspinal muscle ~30, fat ~-80 HU.
- ``pixel2cancer``: Lai et al., MICCAI 2024 (../shared/SPEC-synthesis.md): the cellular automaton
  quantizes liver/pancreas at 100/120/140 HU and treats >= 160 HU as vessel (kidney 140/160/180,
  >= 200 HU). Parenchyma is kept well below, intrahepatic vessels above, those thresholds so the
  automaton's vessel rule has something to act on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tissue:
    """One tissue class: pre-noise mean HU, texture amplitude (HU std) and source key."""

    hu: float
    texture: float
    source: str


TISSUES: dict[str, Tissue] = {
    "air": Tissue(-1000.0, 0.0, "bushberg2012"),
    "lung": Tissue(-850.0, 25.0, "bushberg2012"),
    "skin": Tissue(40.0, 4.0, "bushberg2012"),
    "subcutaneous_fat": Tissue(-105.0, 8.0, "bushberg2012; ts_example"),
    "visceral_fat": Tissue(-95.0, 10.0, "bushberg2012; ts_example"),
    "muscle": Tissue(55.0, 5.0, "bushberg2012 (+~10 HU enhancement, bae2010); ts_example"),
    "liver": Tissue(105.0, 4.0, "bae2010; ts_example; pixel2cancer"),
    "hepatic_vessel": Tissue(180.0, 6.0, "bae2010; pixel2cancer (>= 160 HU = vessel)"),
    "spleen": Tissue(115.0, 4.0, "bae2010; ts_example"),
    "pancreas": Tissue(100.0, 7.0, "fletcher2003; pixel2cancer"),
    "kidney_cortex": Tissue(165.0, 5.0, "yuh1999; pixel2cancer"),
    "kidney_medulla": Tissue(135.0, 5.0, "yuh1999"),
    "renal_sinus_fat": Tissue(-80.0, 10.0, "bushberg2012"),
    "aorta": Tissue(165.0, 4.0, "bae2010; ts_example"),
    "ivc": Tissue(130.0, 6.0, "bae2010 (mixing of opacified renal and unopacified iliac return)"),
    "portal_vein": Tissue(170.0, 5.0, "bae2010; ts_example"),
    "renal_vein": Tissue(150.0, 5.0, "bae2010"),
    "cancellous_bone": Tissue(200.0, 35.0, "pickhardt2013"),
    "cortical_bone": Tissue(900.0, 60.0, "bushberg2012 (reduced by partial volume)"),
    "disc": Tissue(85.0, 8.0, "bushberg2012"),
    "csf": Tissue(15.0, 3.0, "bushberg2012"),
    "gi_wall": Tissue(95.0, 6.0, "bae2010 (enhancing mucosa)"),
    "gi_fluid": Tissue(15.0, 6.0, "bushberg2012"),
    "gi_gas": Tissue(-1000.0, 0.0, "bushberg2012"),
    "stool": Tissue(-150.0, 120.0, "mottled gas/stool mixture"),
}

# Pixel2Cancer's vessel thresholds (HU) per organ, recorded in cohort.json next to the table.
VESSEL_THRESHOLD_HU = {"liver": 160.0, "pancreas": 160.0, "kidney": 200.0}


def tissue_ids() -> dict[str, int]:
    """Stable integer id per tissue (1-based, table order); 0 means 'no tissue painted'."""
    return {name: i + 1 for i, name in enumerate(TISSUES)}


def table_as_dict() -> dict[str, dict[str, float | str]]:
    """The table in JSON-friendly form (for cohort.json and docs)."""
    return {
        name: {"hu": t.hu, "texture_std": t.texture, "source": t.source}
        for name, t in TISSUES.items()
    }
