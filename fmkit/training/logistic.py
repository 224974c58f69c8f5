"""A linear softmax head on fixed vectors, fitted to convergence: multinomial logistic regression.

On frozen vectors the head's problem is convex, so it has one answer; SGD with a learning rate,
epochs and dropout only approaches it. Full-batch L-BFGS reaches it in a second or two on CPU with
nothing to tune but the L2 strength, the way scikit-learn's LogisticRegression (what SetFit puts on
its body, and the usual linear-probe protocol) does. Same objective as scikit-learn's, so `c` means
what its `C` means:

    C * sum_i w[y_i] * CE(x_i W^T + b, y_i)  +  1/2 ||W||^2        (the bias is not penalised)

With two classes scikit-learn fits one vector, w = W_1 - W_0, and penalises 1/2 ||w||^2: so do we.
It is minimised divided by C * n, in float64 so the stopping tolerance means something.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# scikit-learn's LogisticRegression stops at 100 L-BFGS iterations; a few more lets the many-class,
# weakly regularised fits converge too (each iteration is one pass over a cached matrix).
DEFAULT_MAX_ITER = 300


@dataclass
class LogisticFit:
    weight: torch.Tensor  # (num_classes, dim), float32
    bias: torch.Tensor  # (num_classes,), float32
    iterations: int
    loss: float  # final objective / (C * n): the mean weighted cross-entropy plus the scaled penalty
    converged: bool
    seconds: float


def minimise(params: list[torch.Tensor], objective: Callable[[], torch.Tensor], max_iter: int,
             on_iteration: Callable[[int, float], None] | None = None) -> int:
    """Minimise a smooth convex `objective` of `params` with L-BFGS (strong Wolfe line search) to tight
    tolerances; returns the iterations taken (`max_iter` reached: not converged)."""
    optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-7, tolerance_change=1e-10, line_search_fn="strong_wolfe")
    evaluations = 0

    def closure() -> torch.Tensor:
        nonlocal evaluations
        optimizer.zero_grad()
        loss = objective()
        loss.backward()
        evaluations += 1
        if on_iteration is not None:
            on_iteration(evaluations, float(loss.detach()))
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return int(optimizer.state[optimizer._params[0]].get("n_iter", 0))


def fit_logistic_regression(
    vectors: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    c: float = 1.0,
    class_weights: torch.Tensor | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    on_iteration: Callable[[int, float], None] | None = None,
    sample_weights: torch.Tensor | None = None,
) -> LogisticFit:
    """Weights and bias of the L2-regularised softmax regression of `labels` on `vectors`.

    `sample_weights`: one per row, on top of the class weights (the windows of a chunked text share its weight)."""
    if c <= 0:
        raise ValueError(f"c must be positive, got {c}")
    start = time.perf_counter()
    x = vectors.detach().to(torch.float64)
    y = labels.detach().to(torch.long)
    n, dim = x.shape
    sample_weight = (class_weights.to(torch.float64)[y] if class_weights is not None
                     else torch.ones(n, dtype=torch.float64))
    if sample_weights is not None:
        sample_weight = sample_weight * sample_weights.to(torch.float64)
    weight = torch.zeros(num_classes, dim, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    penalty = 1.0 / (2.0 * c * n)

    def regulariser() -> torch.Tensor:
        if num_classes == 2:
            return (weight[1] - weight[0]).pow(2).sum()
        return weight.pow(2).sum()

    def objective() -> torch.Tensor:
        ce = F.cross_entropy(x @ weight.T + bias, y, reduction="none")
        return (sample_weight * ce).sum() / n + penalty * regulariser()

    iterations = minimise([weight, bias], objective, max_iter, on_iteration)
    with torch.no_grad():
        logits = x @ weight.T + bias
        ce = F.cross_entropy(logits, y, reduction="none")
        final = float((sample_weight * ce).sum() / n + penalty * regulariser())
    return LogisticFit(
        weight=weight.detach().to(torch.float32), bias=bias.detach().to(torch.float32), iterations=iterations,
        loss=final, converged=iterations < max_iter, seconds=time.perf_counter() - start,
    )


# Ridge penalties tried, as multiples of the number of examples (the Gram matrix grows with n).
RIDGE_ALPHAS = tuple(10.0 ** k for k in range(-5, 3))


def fit_ridge_regression(vectors: torch.Tensor, targets: torch.Tensor,
                         alphas: tuple[float, ...] = RIDGE_ALPHAS) -> LogisticFit:
    """Ridge regression of `targets` on `vectors`, its penalty chosen by exact leave-one-out error.

    Why not a fixed penalty: how much shrinkage frozen vectors need depends on the examples per dimension
    (270 examples of 384-dimensional vectors overfit without it; 50,000 do not), and the leave-one-out error of
    every penalty comes out of one SVD (scikit-learn's RidgeCV does the same), so choosing costs nothing."""
    start = time.perf_counter()
    x = vectors.detach().to(torch.float64)
    y = targets.detach().to(torch.float64).reshape(-1)
    n = x.shape[0]
    x_mean, y_mean = x.mean(0), y.mean()
    xc, yc = x - x_mean, y - y_mean  # the bias is not penalised: centre, solve, then put it back
    u, sv, vt = torch.linalg.svd(xc, full_matrices=False)
    uty = u.T @ yc
    best: tuple[float, float] | None = None  # (leave-one-out MSE, alpha)
    for alpha in (a * n for a in alphas):
        shrink = sv**2 / (sv**2 + alpha)
        fitted = u @ (shrink * uty)
        leverage = (u**2 * shrink).sum(1) + 1.0 / n  # + the intercept's share
        loo = float((((yc - fitted) / (1.0 - leverage).clamp_min(1e-9)) ** 2).mean())
        if best is None or loo < best[0]:
            best = (loo, alpha)
    assert best is not None
    alpha = best[1]
    weight = vt.T @ ((sv / (sv**2 + alpha)) * uty)
    bias = y_mean - x_mean @ weight
    return LogisticFit(weight=weight.reshape(1, -1).float(), bias=bias.reshape(1).float(), iterations=len(alphas),
                       loss=best[0], converged=True, seconds=time.perf_counter() - start)


def fit_sigmoid_regression(vectors: torch.Tensor, targets: torch.Tensor, c: float = 1.0,
                           max_iter: int = DEFAULT_MAX_ITER,
                           on_iteration: Callable[[int, float], None] | None = None) -> LogisticFit:
    """One-vs-rest L2-regularised logistic regression of a multi-hot `targets` (examples x labels) on `vectors`.

    The labels share nothing, so the sum of their binary losses is minimised at once by one L-BFGS run (the
    same optimum as one scikit-learn LogisticRegression(C=c) per label, each on the summed loss)."""
    if c <= 0:
        raise ValueError(f"c must be positive, got {c}")
    start = time.perf_counter()
    x = vectors.detach().to(torch.float64)
    y = targets.detach().to(torch.float64)
    n, dim = x.shape
    weight = torch.zeros(y.shape[1], dim, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    with torch.no_grad():  # start each bias at its label's log-odds: rare labels begin where they belong
        rate = y.mean(0).clamp(1e-4, 1 - 1e-4)
        bias.copy_(torch.log(rate / (1 - rate)))
    penalty = 1.0 / (2.0 * c * n)

    def objective() -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(x @ weight.T + bias, y, reduction="sum") / n + penalty * weight.pow(2).sum()

    iterations = minimise([weight, bias], objective, max_iter, on_iteration)
    with torch.no_grad():
        final = float(F.binary_cross_entropy_with_logits(x @ weight.T + bias, y, reduction="sum") / n
                      + penalty * weight.pow(2).sum())
    return LogisticFit(weight=weight.detach().float(), bias=bias.detach().float(), iterations=iterations, loss=final,
                       converged=iterations < max_iter, seconds=time.perf_counter() - start)


__all__ = ["DEFAULT_MAX_ITER", "LogisticFit", "fit_logistic_regression", "fit_ridge_regression",
           "fit_sigmoid_regression"]
