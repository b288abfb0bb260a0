"""Built-in abdominal CT phantom cohort (portal-venous phase) for demos and tests.

```python
from synth_backend.phantom import generate_cohort, generate_case, PhantomConfig
generate_cohort("data/phantom", n=4, seed=0, config=PhantomConfig.small(), lesion_fraction=0.5)
case = generate_case(0, PhantomConfig.small(), lesion="liver")  # in memory, (x, y, z) RAS
```
Modules: ``intensities`` (HU table and sources), ``anatomy`` (per-seed sizes and positions),
``shapes``/``canvas``/``draw`` (partial-volume rendering), ``noise``, ``lesions`` (reference
phantom lesions), ``case`` (one phantom), ``cohort`` (the on-disk layout). See docs/phantom.md.
"""

from synth_backend.phantom.case import PhantomCase, case_seed, generate_case, measure_hu
from synth_backend.phantom.cohort import (
    COHORT_JSON,
    CohortError,
    case_id,
    generate_cohort,
    lesion_plan,
    load_cohort,
)
from synth_backend.phantom.config import LESION_ORGANS, STRUCTURES, PhantomConfig

__all__ = [
    "COHORT_JSON",
    "LESION_ORGANS",
    "STRUCTURES",
    "CohortError",
    "PhantomCase",
    "PhantomConfig",
    "case_id",
    "case_seed",
    "generate_case",
    "generate_cohort",
    "lesion_plan",
    "load_cohort",
    "measure_hu",
]
