"""Circular convolutions as explicit matrices, and the implicit gradient of a convolutional
energy model w.r.t. its kernels — by loops over indices and scipy, no FFT, no torch.

The operator (the convention of `torch.nn.functional.conv2d` after circular padding by
a_h = (k_h − 1)//2 rows before and k_h − 1 − a_h after, likewise for the width):

    y[o, i, j] = Σ_{c,p,q} K[o, c, p, q] · x[c, (i + p − a_h) mod n, (j + q − a_w) mod n].

Its matrix is built entry by entry from that formula, so `scipy.linalg.svdvals` of it is an
independent reference for the FFT formula of Sedghi et al. (2019). Its adjoint — the map from a
gradient G w.r.t. the matrix to the gradient w.r.t. the kernel, ∂ℒ/∂K[o,c,p,q] = Σ_{i,j}
G[(o,i,j), (c, i+p−a_h, j+q−a_w)] — is the same loop run backwards.

The convolutional energy model whose gradients `conv_model_gradients` computes (described here
from the mathematics, not read from the code under test): state h = [h_1; h_2] with h_1 of
c_1·n² and h_2 of c_2·n² units,

    W_eff = [[0, Dᵀ], [D, 0]],  D = r · C(K)  (r = 1, or γ/σ(C(K)) up to rounding, under SN),
    U_eff = [[C(U)], [0]],      V_eff = [0, V],

C(·) the matrix above. ℒ's gradient w.r.t. W_eff, U_eff, b, V_eff, c is `implicit_gradients`;
the chain rule to the kernels is: D's gradient collects both blocks, G_D = G[h_2, h_1] +
G[h_1, h_2]ᵀ; spectral normalization is undone by `pull_back_to_raw` (the rank-one correction
through σ(C(K))); the adjoint C* carries the matrices' gradients to K and U; V's gradient is
the h_2 columns of V_eff's.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import scipy.linalg

from .gradients import implicit_gradients, pull_back_to_raw
from .network import Network, as_array

Array = np.ndarray


def _kernel(kernel: object, n: int) -> Array:
    k = as_array(kernel)
    if k.ndim != 4 or min(k.shape) < 1:
        raise ValueError(f"kernel must be a non-empty 4-D array (c_out, c_in, k_h, k_w), "
                         f"got shape {k.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"image size n must be a positive integer, got {n!r}")
    if k.shape[2] > n or k.shape[3] > n:
        raise ValueError(f"kernel size {k.shape[2]}x{k.shape[3]} exceeds the image size n={n}")
    return k


def _entries(shape: tuple[int, ...], n: int):
    """(o, c, p, q, row, column) for every tap and output pixel: the operator's nonzeros."""
    c_out, c_in, k_h, k_w = shape
    a_h, a_w = (k_h - 1) // 2, (k_w - 1) // 2
    for o, c, p, q, i, j in itertools.product(range(c_out), range(c_in), range(k_h),
                                              range(k_w), range(n), range(n)):
        row = (o * n + i) * n + j
        column = (c * n + (i + p - a_h) % n) * n + (j + q - a_w) % n
        yield o, c, p, q, row, column


def circular_conv_matrix(kernel: object, n: int) -> Array:
    """The (c_out·n², c_in·n²) float64 matrix of the circular convolution (module doc), rows
    (o, i, j) and columns (c, i′, j′) row-major."""
    k = _kernel(kernel, n)
    matrix = np.zeros((k.shape[0] * n * n, k.shape[1] * n * n))
    for o, c, p, q, row, column in _entries(k.shape, n):
        matrix[row, column] += k[o, c, p, q]
    return matrix


def conv_matrix_adjoint(grad_matrix: object, kernel_shape: tuple[int, ...], n: int) -> Array:
    """C*(G): ∂ℒ/∂K from ∂ℒ/∂C(K) = G, i.e. Σ over output pixels of G at each tap's entry."""
    shape = tuple(int(s) for s in kernel_shape)
    _kernel(np.zeros(shape), n)
    g = as_array(grad_matrix)
    expected = (shape[0] * n * n, shape[1] * n * n)
    if g.shape != expected:
        raise ValueError(f"gradient must have the matrix shape {expected}, got {g.shape}")
    grad = np.zeros(shape)
    for o, c, p, q, row, column in _entries(shape, n):
        grad[o, c, p, q] += g[row, column]
    return grad


def conv_operator_norm(kernel: object, n: int) -> float:
    """σ_max of the circular convolution: `scipy.linalg.svdvals` of the explicit matrix."""
    return float(scipy.linalg.svdvals(circular_conv_matrix(kernel, n))[0])


def reshaped_kernel_norm(kernel: object) -> float:
    """σ_max(K reshaped to (c_out, c_in·k_h·k_w)) by scipy: the common conv "SN" divisor."""
    k = as_array(kernel)
    if k.ndim != 4 or k.size == 0:
        raise ValueError(f"kernel must be a non-empty 4-D array, got shape {k.shape}")
    return float(scipy.linalg.svdvals(k.reshape(k.shape[0], -1))[0])


def conv_network(recurrent_kernel: object, input_kernel: object, b: object, V: object,
                 c: object, *, image_size: int, gamma: float | None = None,
                 activation: str = "tanh") -> Network:
    """The convolutional energy model (module doc) built from its raw parameters by this
    module's own matrices: D = C(K), or γC(K)/σ_max(C(K)) by scipy when `gamma` is given (exact
    σ, no margin); V (n_out, c_2·n²) reads h_2. A witness's construction, for `loss` and
    `implicit_gradients` at parameters the code under test never saw (finite differences)."""
    n = image_size
    K, U = _kernel(recurrent_kernel, n), _kernel(input_kernel, n)
    if U.shape[0] != K.shape[1]:
        raise ValueError(f"input kernel {U.shape} must produce the c_1={K.shape[1]} channels "
                         f"the recurrent kernel {K.shape} reads")
    coupling = circular_conv_matrix(K, n)
    if gamma is not None:
        coupling *= gamma / scipy.linalg.svdvals(coupling)[0]
    n2, n1 = coupling.shape
    weight = np.block([[np.zeros((n1, n1)), coupling.T], [coupling, np.zeros((n2, n2))]])
    drive = circular_conv_matrix(U, n)
    readout = as_array(V)
    if readout.ndim != 2 or readout.shape[1] != n2:
        raise ValueError(f"V must have shape (n_out, {n2}), got {readout.shape}")
    return Network(
        weight=weight, U=np.vstack([drive, np.zeros((n2, drive.shape[1]))]), b=as_array(b),
        activation=activation, W=weight,
        V=np.hstack([np.zeros((readout.shape[0], n1)), readout]), c=as_array(c),
        symmetric=False, spectral_norm=False,
    )


def conv_model_gradients(net: Network, x: object, y: object, *, recurrent_kernel: object,
                         input_kernel: object, image_size: int) -> dict[str, Array]:
    """∇ℒ w.r.t. the raw kernels of the convolutional energy model (module doc), by scipy.

    net: the model's snapshot (W_eff, U_eff, b, V_eff, c as the dynamics use them; net.W and
    net.symmetric are ignored); recurrent_kernel K (c_2, c_1, k, k) and input_kernel U (c_1,
    c_0, k_in, k_in) are the raw parameters. net.spectral_norm says whether D = γC(K)/σ
    (checked to 1e-10 relative by `pull_back_to_raw`, so a float64 model); without it D must
    equal C(K). Returns {"W": ∂ℒ/∂K, "U": ∂ℒ/∂U, "b", "V": (n_out, c_2·n²), "c"}.
    ValueError if net's matrices do not have the block structure this model defines.
    """
    n = image_size
    K, U = _kernel(recurrent_kernel, n), _kernel(input_kernel, n)
    c2, c1 = K.shape[:2]
    n1, n2 = c1 * n * n, c2 * n * n
    weight = net.weight
    if weight.shape != (n1 + n2, n1 + n2) or U.shape[0] != c1:
        raise ValueError(f"W_eff {weight.shape} does not match kernels {K.shape}, {U.shape} "
                         f"on {n}x{n} images")
    coupling = weight[n1:, :n1]
    structure_gap = max(np.abs(weight[:n1, :n1]).max(), np.abs(weight[n1:, n1:]).max(),
                        np.abs(weight[:n1, n1:] - coupling.T).max())
    if structure_gap != 0.0:
        raise ValueError(f"W_eff is not [[0, D^T], [D, 0]]: off-structure entries up to "
                         f"{structure_gap:.3e}")
    raw = circular_conv_matrix(K, n)
    if not net.spectral_norm and np.abs(coupling - raw).max() > 0:
        raise ValueError("without spectral normalization D must equal the kernel's matrix")
    effective = implicit_gradients(
        dataclasses.replace(net, W=weight, symmetric=False, spectral_norm=False), x, y)
    g = effective["W"]
    grad_coupling = g[n1:, :n1] + g[:n1, n1:].T
    if net.spectral_norm:
        grad_coupling = pull_back_to_raw(
            dataclasses.replace(net, weight=coupling, W=raw, symmetric=False), grad_coupling)
    return {
        "W": conv_matrix_adjoint(grad_coupling, K.shape, n),
        "U": conv_matrix_adjoint(effective["U"][:n1], U.shape, n),
        "b": effective["b"],
        "V": effective["V"][:, n1:],
        "c": effective["c"],
    }
