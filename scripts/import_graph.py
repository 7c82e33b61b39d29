"""Folder-scale import graph of crossl_edge: nodes, arrows, circles and floors (longest path of
the DAG once each circle is one node), from grimp (installed with import-linter).

Usage: .venv/bin/python scripts/import_graph.py   (run from the repository root)
"""

from __future__ import annotations

import collections
import sys

import grimp


def folder(module: str) -> str:
    return ".".join(module.split(".")[:2])


def main() -> int:
    g = grimp.build_graph("crossl_edge", cache_dir=None)
    edges = {(folder(m), folder(i)) for m in g.modules
             for i in g.find_modules_directly_imported_by(m)
             if folder(m) != folder(i) and folder(i) != "crossl_edge"}
    nodes = sorted({a for a, _ in edges} | {b for _, b in edges})
    adj: dict[str, set[str]] = collections.defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
    comp: dict[str, int] = {}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    sccs: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in adj[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                comp[w] = len(sccs)
                scc.append(w)
                if w == v:
                    break
            sccs.append(scc)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    down: dict[int, set[int]] = collections.defaultdict(set)
    for a, b in edges:
        if comp[a] != comp[b]:
            down[comp[a]].add(comp[b])
    height: dict[int, int] = {}

    def floors(c: int) -> int:
        if c not in height:
            height[c] = 1 + max((floors(d) for d in down[c]), default=0)
        return height[c]

    circles = [sorted(s) for s in sccs if len(s) > 1]
    print(f"nodes {len(nodes)}, arrows {len(edges)}, floors {max(map(floors, range(len(sccs))))}, "
          f"circles {circles}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
