"""cgtransfer: HIP-NN-TS coarse-grained force fields for molecular liquids and their transferability.

Layers, top first; a module imports only its own layer and those below it, and stages never import each other
(tests/test_layout.py, `cgtransfer.provenance`):

* ``stages``: one module per workflow rule, the only modules the rule scripts call (build_box, reference,
  mapping, train, force_errors, pair_table, cg_md, volume_fit, compare, validate, summarize);
* ``kinds``: the CG model interface (``base.CGModel``), the registry of kinds, and each kind with what it owns
  (``hipnn`` with its hippynn graph and OpenMM force, ``hipnn_t``, ``mscg``), the training set and the volume term;
* ``md``: the OpenMM MD protocol (phases, reporters, checkpoints), force fields and box building;
* ``analysis``: RDFs and angles, intramolecular bonds, statistics of correlated series;
* base: ``units`` (every conversion between OpenMM nm/kJ/mol and the model's Å/kcal/mol), ``io``, ``config``,
  ``dataset``, ``ensembles``, ``compute``, ``errors``, ``plots``, ``provenance``.
"""

import os as _os
import warnings as _warnings

# hippynn warns for every batch holding a pair below the sensitivity range: thousands of lines in an MD log.
# Close contacts are measured and reported instead (min_pair_distance_A in the CG thermo and summaries).
_os.environ.setdefault("HIPPYNN_WARN_LOW_DISTANCES", "false")
_warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

__version__ = "0.1.0"
