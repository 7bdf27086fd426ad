"""Private helpers shared across the package's subpackages (not public API; may change without notice).

- :mod:`.checks` — argument validation and dtype/shape helpers;
- :mod:`.reduction` — ``reduction=`` handling;
- :mod:`.pairwise` — the pairwise-distance engine of the sample-based scores;
- :mod:`.blocks` — observation blocking shared by the pairwise engine and the variogram score;
- :mod:`.registry` — the type-keyed registries behind ``crps`` and ``hyvarinen_score``;
- :mod:`.special` — differentiable special functions torch lacks (regularised incomplete gamma/beta,
  exponential integral).
"""
