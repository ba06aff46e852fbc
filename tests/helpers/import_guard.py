"""A guard against importing genobs' domain packages by their folder names.

The domain packages install as genobs.collectors, genobs.evaluators, ... (pyproject's
package-dir). Their folders sit at the top of the checkout, and the checkout is on sys.path
whenever Python runs from it, so a stray ``import collectors`` would load a second copy of
the code under another name. Its module state (the store instances, the metric registry, the
loaded models) is not the one genobs uses, so a test could pass for the wrong reason or fail
for an unrelated one. tests/conftest.py puts this finder first on sys.meta_path, where such an
import fails at once with the name to use instead.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Sequence

DOMAIN_PACKAGES = ("collectors", "evaluators", "slo", "dashboards", "sample_data")


class TopLevelDomainImportGuard(importlib.abc.MetaPathFinder):
    """Refuses the top-level names of genobs' domain packages (and their submodules)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: object = None) -> None:
        top = fullname.partition(".")[0]
        if top in DOMAIN_PACKAGES:
            raise ImportError(
                f"`import {fullname}` would load a second copy of genobs.{fullname} from the "
                f"checkout; import genobs.{fullname} instead",
                name=fullname,
            )
        return None


def install() -> TopLevelDomainImportGuard:
    """Put the guard first on sys.meta_path (once) and check that no copy is loaded already."""
    guard = next((f for f in sys.meta_path if isinstance(f, TopLevelDomainImportGuard)), None)
    if guard is None:
        guard = TopLevelDomainImportGuard()
        sys.meta_path.insert(0, guard)
    loaded = sorted(name for name in sys.modules if name.partition(".")[0] in DOMAIN_PACKAGES)
    if loaded:  # imported before the guard was in place (a plugin, sitecustomize, a .pth)
        raise ImportError(f"second copies of genobs' domain packages are loaded: {', '.join(loaded)}")
    return guard
