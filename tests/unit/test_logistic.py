"""The logistic-regression head solver: same answer as scikit-learn, weights that mean what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from fmkit.training.logistic import fit_logistic_regression


def blobs(n_per_class: int, num_classes: int, dim: int, seed: int, spread: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=g) * spread
    x = torch.cat([centres[k] + torch.randn(n_per_class, dim, generator=g) for k in range(num_classes)])
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    return x, y


def sklearn_objective(x: torch.Tensor, y: torch.Tensor, c: float, weight: np.ndarray, bias: np.ndarray) -> float:
    """scikit-learn's LogisticRegression objective, written out: C * sum CE + 1/2 ||coef||^2."""
    w, b = torch.as_tensor(weight, dtype=torch.float64), torch.as_tensor(bias, dtype=torch.float64)
    if w.shape[0] == 1:  # binary: one vector; class 1's logit is x.w + b
        w, b = torch.cat([torch.zeros_like(w), w]), torch.cat([torch.zeros_like(b), b])
    ce = torch.nn.functional.cross_entropy(x.double() @ w.T + b, y, reduction="sum")
    return float(c * ce + 0.5 * (w[1] - w[0] if len(w) == 2 else w).pow(2).sum())


@pytest.mark.parametrize("num_classes,c", [(2, 1.0), (5, 0.1), (5, 10.0)])
def test_matches_scikit_learn(num_classes: int, c: float) -> None:
    x, y = blobs(60, num_classes, 8, seed=num_classes, spread=0.6)
    fit = fit_logistic_regression(x, y, num_classes, c=c)
    reference = LogisticRegression(C=c, max_iter=5000, tol=1e-10).fit(x.numpy(), y.numpy())
    assert fit.converged
    ours_w, ours_b = fit.weight.numpy(), fit.bias.numpy()
    if num_classes == 2:
        ours_w, ours_b = ours_w[1:] - ours_w[:1], ours_b[1:] - ours_b[:1]
    # The same minimum: ours at least as low as scikit-learn's (which stops at its own tolerance) ...
    assert sklearn_objective(x, y, c, ours_w, ours_b) <= sklearn_objective(x, y, c, reference.coef_, reference.intercept_) + 1e-6
    # ... at the same place, with the same predictions.
    np.testing.assert_allclose(ours_w, reference.coef_, atol=1e-2)
    np.testing.assert_allclose(ours_b, reference.intercept_, atol=1e-2)
    assert ((x @ fit.weight.T + fit.bias).argmax(1).numpy() == reference.predict(x.numpy())).all()


def test_stronger_penalty_gives_smaller_weights() -> None:
    x, y = blobs(40, 3, 6, seed=1)
    loose = fit_logistic_regression(x, y, 3, c=10.0)
    tight = fit_logistic_regression(x, y, 3, c=0.01)
    assert float(tight.weight.norm()) < 0.5 * float(loose.weight.norm())


def test_class_weight_equals_repeating_that_class() -> None:
    x, y = blobs(30, 3, 5, seed=2, spread=0.7)
    weighted = fit_logistic_regression(x, y, 3, class_weights=torch.tensor([1.0, 2.0, 1.0]))
    repeated = fit_logistic_regression(torch.cat([x, x[y == 1]]), torch.cat([y, y[y == 1]]), 3)
    torch.testing.assert_close(weighted.weight, repeated.weight, atol=1e-4, rtol=0)
    torch.testing.assert_close(weighted.bias, repeated.bias, atol=1e-4, rtol=0)


def test_reports_progress_and_rejects_a_bad_c() -> None:
    x, y = blobs(20, 2, 4, seed=3)
    losses: list[float] = []
    fit = fit_logistic_regression(x, y, 2, on_iteration=lambda i, loss: losses.append(loss))
    assert losses[0] == pytest.approx(np.log(2))  # zero weights: uniform softmax
    assert fit.loss == pytest.approx(min(losses), rel=1e-9)
    assert fit.iterations >= 1
    with pytest.raises(ValueError, match="c must be positive"):
        fit_logistic_regression(x, y, 2, c=0.0)
