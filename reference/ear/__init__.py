"""Reference EAR (energy-score continuous autoregression): model, tokenizers, data, trainer, sampler, evaluator.

Not part of the installed library. Run the scripts from the repository root, e.g.
``python reference/ear/train.py`` (the CPU demo) or ``torchrun ... reference/ear/train.py --preset ear_b``.
"""
