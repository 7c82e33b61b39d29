"""Checkout imports of `crossl_edge.export` / `crossl_edge.firmware_bridge` from top-level folders.

A wheel places those folders inside `crossl_edge/`; a checkout (or an editable install) keeps
them at the repository root, so this finder maps exactly those two names there, and nothing else.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

SUBPACKAGES = ("export", "firmware_bridge")


class _TopLevelFolderFinder(importlib.abc.MetaPathFinder):
    """Finds `crossl_edge.<sub>` in `<root>/<sub>/` for the sub-packages kept at the top level."""

    def __init__(self, root: Path) -> None:
        self.folders = {f"crossl_edge.{sub}": root / sub for sub in SUBPACKAGES}

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        folder = self.folders.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)])


def install_source_layout() -> None:
    """Register the finder when this package runs from a checkout (no copies inside the package)."""
    here = Path(__file__).resolve().parent
    root = here.parent
    if (here / SUBPACKAGES[0]).is_dir() or not (root / SUBPACKAGES[0] / "__init__.py").is_file():
        return  # installed from a wheel: the sub-packages are ordinary folders of this package
    if any(isinstance(f, _TopLevelFolderFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _TopLevelFolderFinder(root))
