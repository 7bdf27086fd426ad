"""Reference CALM-style continuous-token language model (Shao et al. 2025, "Continuous Autoregressive
Language Models"), rebuilt small on the library's parts.

Modules: ``configs`` (typed JSON config), ``data`` (corpus loader and held-out split), ``tokenizer`` (byte-level
BPE trained in the job), ``model`` (autoencoder, continuous LM, token baseline), ``brierlm`` (BrierLM and
likelihood-free temperature sampling), ``run.py`` (the one command). Not part of the installed library: run
``python reference/calm/run.py``.
"""
