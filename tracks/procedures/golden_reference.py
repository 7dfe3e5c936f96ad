"""The lines of track 23's account: what was drawn and how close torch and golden came, and
what the control's perturbation did."""

from __future__ import annotations

from typing import Any

from properties.golden_agreement import BETAS, PERTURBATION, POINTS, TOL


def agreement_note(seen: list[dict[str, Any]], worst: dict[str, float], bound: float) -> str:
    smallest_beta = min(m["beta"] for m in seen)
    return (f"{len(seen)} drawn models (symmetric/asymmetric, SN on/off, beta in "
            f"{list(BETAS)} capped for contraction (smallest {smallest_beta:.3g}), holomorphic N "
            f"in {list(POINTS)}), phases solved to {TOL:g}: "
            + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
            + f" (bound {bound:g})")


def control_note(smallest: float, slip: float, bound: float) -> str:
    return (f"control: torch with U[0,0] + {PERTURBATION:g} differs from golden by at least "
            f"{smallest:.2e} on every drawn model (> {bound:g}: caught); a negated "
            f"estimate differs by {slip:.2e}")
