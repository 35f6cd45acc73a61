"""An independent reference for the exact values: each estimator's per-sample term written
plainly in numpy, integrated by tensor Gauss-Legendre quadrature over its variates' densities.

Nothing here shares code with gradsweep.truth (no closed forms, no completing the square):
the densities are written out and integrated on truncated ranges, which for these smooth,
Gaussian-tailed integrands is accurate to about 1e-12.
"""

import math

import numpy as np
from numpy.polynomial.legendre import leggauss

SQRT_2PI = math.sqrt(2.0 * math.pi)


def rule(lo, hi, n, density):
    x, w = leggauss(n)
    x = lo + (hi - lo) * (x + 1.0) / 2.0
    return x, w * (hi - lo) / 2.0 * density(x)


NORMAL = rule(-12.0, 12.0, 400, lambda x: np.exp(-x * x / 2) / SQRT_2PI)
RAYLEIGH = rule(0.0, 12.0, 300, lambda x: x * np.exp(-x * x / 2))
MAXWELL = rule(-12.0, 12.0, 400, lambda x: x * x * np.exp(-x * x / 2) / SQRT_2PI)
UNIFORM = rule(0.0, 1.0, 200, lambda x: np.ones_like(x))


def functions(objective):
    """f and f' of a built-in objective as numpy functions, written independently of gradsweep."""
    name, k = objective.name, objective.k
    if name == "square":
        return (lambda x: x * x), (lambda x: 2 * x)
    if name == "quadratic":
        return (lambda x: (x - k) ** 2), (lambda x: 2 * (x - k))
    if name == "exp_quadratic":
        return (lambda x: np.exp(-k * x * x)), (lambda x: -2 * k * x * np.exp(-k * x * x))
    if name == "cos":
        return (lambda x: np.cos(k * x)), (lambda x: -k * np.sin(k * x))
    raise KeyError(name)


def second_derivative(objective, x):
    name, k = objective.name, objective.k
    if name in ("square", "quadratic"):
        return 2.0 + 0 * x
    if name == "exp_quadratic":
        return (4 * k * k * x * x - 2 * k) * np.exp(-k * x * x)
    return -k * k * np.cos(k * x)


def taylor(objective, t):
    f, df = functions(objective)
    return f(t), df(t), second_derivative(objective, t)


def per_sample_term(name, wrt, objective, t, s, v):
    """The per-sample term of a linear estimator at variates ``v`` (a dict of broadcast arrays)."""
    f, df = functions(objective)
    e = v.get("eps")
    score = (lambda e: e / s) if wrt == "theta" else (lambda e: (e * e - 1) / s)
    if name == "score":
        return f(t + s * e) * score(e)
    if name == "score_mean_baseline":
        b = expect(lambda v: f(t + s * v["eps"]), eps=NORMAL)
        return (f(t + s * e) - b) * score(e)
    if name == "score_optimal_baseline":
        b = expect(lambda v: f(t + s * v["eps"]) * score(v["eps"]) ** 2, eps=NORMAL) / expect(lambda v: score(v["eps"]) ** 2, eps=NORMAL)
        return (f(t + s * e) - b) * score(e)
    if name == "score_delta":
        f0, d0, dd0 = taylor(objective, t)
        h = f0 + d0 * s * e + dd0 * (s * e) ** 2 / 2
        return (f(t + s * e) - h) * score(e) + (d0 if wrt == "theta" else s * dd0)
    if name == "pathwise":
        return df(t + s * e) * (1 if wrt == "theta" else e)
    if name == "pathwise_antithetic":
        a, b = df(t + s * e), df(t - s * e)
        return (a + b) / 2 if wrt == "theta" else (a - b) * e / 2
    if name == "mvd":
        if wrt == "theta":
            return (f(t + s * v["w"]) - f(t - s * v["w"])) / (s * SQRT_2PI)
        return (f(t + s * v["m"]) - f(t + s * v["u"] * v["m"])) / s
    if name == "mvd_uncoupled":
        if wrt == "theta":
            return (f(t + s * v["w"]) - f(t - s * v["w2"])) / (s * SQRT_2PI)
        return (f(t + s * v["m"]) - f(t + s * v["e2"])) / s
    raise KeyError(name)


def variates(name, wrt):
    if name == "mvd":
        return {"w": RAYLEIGH} if wrt == "theta" else {"m": MAXWELL, "u": UNIFORM}
    if name == "mvd_uncoupled":
        return {"w": RAYLEIGH, "w2": RAYLEIGH} if wrt == "theta" else {"m": MAXWELL, "e2": NORMAL}
    return {"eps": NORMAL}


def expect(fn, **rules):
    """E[fn(v)] with independent variates v[name] ~ rules[name] (a tensor product of the rules)."""
    names = list(rules)
    grids = np.meshgrid(*[rules[n][0] for n in names], indexing="ij")
    weights = np.ones_like(grids[0])
    for axis, n in enumerate(names):
        shape = [1] * len(names)
        shape[axis] = -1
        weights = weights * rules[n][1].reshape(shape)
    return float(np.sum(weights * fn(dict(zip(names, grids, strict=True)))))


def linear_moments(name, wrt, objective, t, s):
    """(mean, variance) of one per-sample term."""
    rules = variates(name, wrt)
    mean = expect(lambda v: per_sample_term(name, wrt, objective, t, s, v), **rules)
    second = expect(lambda v: per_sample_term(name, wrt, objective, t, s, v) ** 2, **rules)
    return mean, second - mean * mean


def loo_moments(objective, wrt, t, s, n, divisor):
    """(mean, variance) of sum_i (f_i - mean f) s_i / divisor over n samples, by n-dimensional quadrature."""
    f, _ = functions(objective)
    x, w = rule(-10.0, 10.0, {2: 160, 3: 70}[n], lambda x: np.exp(-x * x / 2) / SQRT_2PI)
    grids = np.meshgrid(*([x] * n), indexing="ij")
    weight = np.ones_like(grids[0])
    for axis in range(n):
        shape = [1] * n
        shape[axis] = -1
        weight = weight * w.reshape(shape)
    fs = [f(t + s * e) for e in grids]
    fbar = sum(fs) / n
    score = (lambda e: e / s) if wrt == "theta" else (lambda e: (e * e - 1) / s)
    est = sum((fi - fbar) * score(e) for fi, e in zip(fs, grids, strict=True)) / divisor
    mean = float(np.sum(weight * est))
    return mean, float(np.sum(weight * est * est)) - mean * mean
