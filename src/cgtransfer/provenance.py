"""Which package source files a piece of code depends on, read from its imports.

The workflow makes these files inputs of the rule whose script imports them (transitively, within the package,
function-level imports included), so that editing a module reruns exactly the stages whose code can reach it;
the same walk checks the package's layering (stages on top, then kinds, md, analysis, then the base modules).
Only this package's imports are followed; the file system is read, nothing is imported.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "cgtransfer"
ROOT = Path(__file__).resolve().parent

# Layers, top first: a module may import its own layer's modules (kinds.hipnn imports kinds.base) and any layer
# below it, never one above; stages never import each other.
LAYERS = ("stages", "kinds", "md", "analysis", "base")


def module_file(module: str) -> Path | None:
    """The source file of a package module (``cgtransfer.kinds.base``), or None if it is not one."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    path = ROOT.joinpath(*parts[1:])
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def module_name(path: Path) -> str:
    rel = Path(path).resolve().relative_to(ROOT).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=None)
def imports_of(path: Path) -> frozenset[str]:
    """The package modules one file imports (anywhere in it): ``from cgtransfer.x import y`` names ``x.y`` when y
    is a module and ``x`` otherwise; relative imports are resolved against the file's package."""
    path = Path(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    try:
        package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    except ValueError:  # a file outside the package (a workflow script)
        package = PACKAGE
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if module_file(sub) else module)
    return frozenset(m for m in found if module_file(m))


def with_parents(module: str) -> list[str]:
    """A module and the packages Python runs on the way to it (their ``__init__``)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


REGISTRY = f"{PACKAGE}.kinds.registry"


def kind_modules() -> dict[str, str]:
    """The registry's ``KIND_MODULES`` (kind → module), read from its source: the registry imports a kind's module
    only when asked for that kind, so the dependency is data, not an import statement."""
    tree = ast.parse(module_file(REGISTRY).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "KIND_MODULES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{module_file(REGISTRY)} defines no KIND_MODULES")


@lru_cache(maxsize=None)
def closure(path: Path, kind: str | None = None) -> frozenset[str]:
    """Every package module that the code in ``path`` can reach through imports (with their packages). Code that
    reaches the model registry depends on the module of ``kind``, or of every kind when ``kind`` is None."""
    seen: set[str] = set()
    todo = [m for first in imports_of(Path(path)) for m in with_parents(first)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        found = set(imports_of(module_file(module)))
        if module == REGISTRY:
            kinds = kind_modules()
            found |= set(kinds.values()) if kind is None else {kinds[kind]}
        todo.extend(m for first in found for m in with_parents(first) if m not in seen)
    return frozenset(seen)


def package_sources(path, kind: str | None = None) -> list[str]:
    """The package source files the code in ``path`` (a workflow script) depends on, sorted; for a job of one
    model ``kind``, only that kind's modules among the kinds."""
    return sorted(str(module_file(m)) for m in closure(Path(path).resolve(), kind))


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in LAYERS[:-1] else "base"


def layering_violations() -> list[str]:
    """Imports that run up a layer, or from one stage to another: 'importer -> imported (why)'."""
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        importer = module_name(path)
        for imported in sorted(imports_of(path)):
            if imported in (PACKAGE, importer) or importer == PACKAGE:
                continue
            a, b = layer_of(importer), layer_of(imported)
            if rank[b] < rank[a]:
                out.append(f"{importer} -> {imported} (the {b} layer is above {a})")
            elif a == b == "stages" and imported != f"{PACKAGE}.stages":
                out.append(f"{importer} -> {imported} (a stage imports another stage)")
    return out


def import_cycles() -> list[list[str]]:
    """Circles in the package's module import graph (strongly connected components of more than one module)."""
    graph = {module_name(p): sorted(imports_of(p) - {PACKAGE}) for p in ROOT.rglob("*.py")}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles
