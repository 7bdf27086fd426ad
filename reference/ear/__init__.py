"""Reference EAR (energy-score continuous autoregression).

Library modules (one job each): ``configs``, ``distributed``, ``tokenizer``, ``data``, ``model``,
``checkpoint``, ``sampling``, ``trainer``, ``metrics``. Command-line entry points (thin, never importing each
other): ``train.py``, ``sample.py``, ``evaluate.py``, ``cache.py``. Not part of the installed library: run the
scripts by path, e.g. ``python reference/ear/train.py`` (the CPU demo) or
``torchrun ... reference/ear/train.py --preset ear_b``; they make the repository root importable themselves.
"""
