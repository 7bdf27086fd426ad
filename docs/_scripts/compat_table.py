"""The migration table of docs/compat.md, generated from ``scoringrules_torch.compat.NATIVE`` at build time."""

from __future__ import annotations

import scoringrules_torch.compat as compat

ALIASES = {"energy_score": "es_ensemble", "variogram_score": "vs_ensemble", "twenergy_score": "twes_ensemble",
           "owenergy_score": "owes_ensemble", "vrenergy_score": "vres_ensemble",
           "twvariogram_score": "twvs_ensemble", "owvariogram_score": "owvs_ensemble",
           "vrvariogram_score": "vrvs_ensemble"}


def table() -> str:
    """A Markdown table: every compat name, the native call it makes."""
    rows = ["| scoringrules / compat name | native call in `scoringrules_torch` |", "|---|---|"]
    names = sorted(set(compat.NATIVE) | {a for a in ALIASES if hasattr(compat, a)})
    for name in names:
        call = compat.NATIVE.get(name) or f"alias of `{ALIASES[name]}`"
        rows.append(f"| `{name}` | `{call}` |" if name in compat.NATIVE else f"| `{name}` | {call} |")
    rows.append("")
    rows.append(f"{len(names)} names in all, generated from `scoringrules_torch.compat.NATIVE` when the docs "
                "are built.")
    return "\n".join(rows)
