"""cgtransfer: HIP-NN-TS coarse-grained force fields for molecular liquids and their transferability.

One module per workflow stage (box, reference, mapping, training, cg_md, compare, summarize);
`units` owns every unit conversion between OpenMM (nm, ps, kJ/mol) and the model (Å, kcal/mol).
"""

import os as _os
import warnings as _warnings

# hippynn warns for every batch holding a pair below the sensitivity range: thousands of lines in an MD log.
# Close contacts are measured and reported instead (min_pair_distance_A in the CG thermo and summaries).
_os.environ.setdefault("HIPPYNN_WARN_LOW_DISTANCES", "false")
_warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

__version__ = "0.1.0"
