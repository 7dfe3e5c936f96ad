"""Symmetric EP at β = 1e-5 vs a converged reference gradient: per parameter, relative error
≤ 1e-5 and 1 − cosine ≤ 1e-9.

Symmetric EP estimates ĝ(β) = dℒ/dθ + c_θβ² + O(β⁴) (`eqprop_core/gradients.py`). The bias
constant c_θ is model-dependent with a heavy tail (the nudge is amplified by ‖(I − J*)⁻¹‖·‖V‖,
per-sample terms cancel in the batch mean, SN's projection cancels most of the raw-W gradient):
measured over ~1500 drawn and hunted models, c_θ = rel/β² ≤ 9e3, so a fixed β = 1e-4 would leave
biases up to 9e-5. At β = 1e-5 the bias is ≤ 9e-7 and the bound 1e-5 admits c_θ ≤ 1e5, while the
round-off of phases solved to residual 1e-14 (≈ 2e-13/β on the O(1) scale of the partials,
measured ≤ 7e-8) stays over 100× below it. An estimator off by a constant bias ≥ 1e-5 (a wrong
sign, a missing ½, a dropped SN term, W's asymmetry) fails it. A relative error ε bounds
1 − cos ≤ ε²/2 = 5e-11, hence the cosine bound with headroom.

The reference is whatever is exact to well below 1e-5: the scipy implicit gradient (track 9),
BPTT through the Banach T (track 10), the implicit raw-W gradient through SN (track 16).
"""

from __future__ import annotations

SMALL_BETA = 1e-5  # where the bias c_θβ² ≤ 9e-7 on every model seen
AGREEMENT_TOL = 1e-5  # worst per-parameter relative error
COSINE_TOL = 1e-9  # worst per-parameter 1 − cos: (1e-5)²/2 = 5e-11, with headroom
