"""Matched initialization from the seed alone: `variants.build(variant, …, sn=mode, seed=s)` gives
every variant × SN mode bit-identical raw parameters at seed s, different ones at s + 1, the
same bits whatever the caller's global random states, and leaves those states as it found them.

The dataset tracks 25–28 compare variants and SN modes from one shared initialization per seed,
and track 24 checks the promise at every run (`initialization_evidence`: no data needed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch

from eqprop_core.variants import SN_MODES, VARIANTS, build

from .evidence import Evidence, at_most
from .global_rng import global_rng_state, isolated_global_state, scramble_global_rng

INIT_WIDTHS = (64, 32, 10)  # digits' (n_in, n_out) around track 24's hidden width; no data read
SCRAMBLE = 104_729  # any seed other than the build's: the global state `build` must ignore


def parameter_digests(model: torch.nn.Module) -> dict[str, str]:
    """sha256 of each raw parameter's dtype, shape and bytes: equal digests, identical tensors."""
    digests = {}
    for name, value in model.named_parameters():
        data = value.detach().cpu().contiguous()
        digest = hashlib.sha256(f"{data.dtype} {tuple(data.shape)}".encode())
        digest.update(data.numpy().tobytes())
        digests[name] = digest.hexdigest()
    return digests



def initialization_evidence(seed: int, builder: Any = build,
                            widths: tuple[int, int, int] = INIT_WIDTHS) -> list[Evidence]:
    """Four checks of `variants.build`'s promise that raw parameters depend on the seed alone.

    Over every variant × SN mode ("arm"), with the raw parameters compared by sha256 of their
    bytes (a difference of one ulp changes the digest):
    (i) at seed s every arm starts from the parameters of the first arm — mismatched tensors = 0;
    (ii) seed s + 1 gives different parameters — tensors identical to seed s's = 0 (every raw
        parameter is a random draw, none a constant);
    (iii) built after the global torch/NumPy/`random` states were reseeded with another seed
        and drawn from, each arm's parameters are the same — mismatched tensors = 0;
    (iv) `build` leaves the caller's global states as they were — generators changed = 0.
    The whole measurement runs inside `isolated_global_state`, so it disturbs nothing of its
    caller's.
    """
    arms = [(variant, sn) for variant in VARIANTS for sn in SN_MODES]

    def digests(variant: str, sn: str, at: int) -> dict[str, str]:
        return parameter_digests(builder(variant, *widths, sn=sn, seed=at)[0])

    with isolated_global_state():
        scramble_global_rng(seed)
        base = {arm: digests(*arm, seed) for arm in arms}
        following = {arm: digests(*arm, seed + 1) for arm in arms}
        scrambled = {}
        changed = []
        for index, arm in enumerate(arms):
            scramble_global_rng(SCRAMBLE + index)
            before = global_rng_state()
            scrambled[arm] = digests(*arm, seed)
            after = global_rng_state()
            changed += [f"{arm[0]}/{arm[1]}: {gen}" for gen, a, b in
                        zip(("torch", "numpy", "random"), before, after) if a != b]
    first = arms[0]

    def mismatched(got: Mapping[tuple[str, str], dict[str, str]], want: Any,
                   same: bool = False) -> list[str]:
        return [f"{v}/{sn}.{name}" for (v, sn), found in got.items()
                for name, digest in found.items()
                if (digest == want(v, sn)[name]) is same]

    unmatched = mismatched(base, lambda v, sn: base[first])
    repeated = mismatched(following, lambda v, sn: base[(v, sn)], same=True)
    dependent = mismatched(scrambled, lambda v, sn: base[(v, sn)])
    arm_names = [f"{v}/{sn}" for v, sn in arms]
    tensors = len(arms) * len(base[first])
    return [
        at_most(f"seed {seed}: raw parameter tensors of the {len(arms)} variant x SN arms that "
                f"differ from {first[0]}/{first[1]}'s (sha256)", len(unmatched), 0,
                arms=arm_names, differing=unmatched, tensors=tensors, widths=list(widths),
                digests={n: d[:16] for n, d in base[first].items()}),
        at_most(f"seeds {seed} and {seed + 1}: raw parameter tensors identical between the "
                "seeds (every arm, sha256)", len(repeated), 0, identical=repeated,
                tensors=tensors),
        at_most(f"seed {seed}: raw parameter tensors that change when the global torch/NumPy/"
                "random states are reseeded and drawn from before build (every arm)",
                len(dependent), 0, differing=dependent, tensors=tensors,
                scramble_seeds=[SCRAMBLE, SCRAMBLE + len(arms) - 1]),
        at_most("global RNG states (torch, NumPy, random) that build changed, over every arm",
                len(changed), 0, changed=changed, generators=3 * len(arms)),
    ]

