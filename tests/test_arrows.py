"""One-way arrows: every import in act/ and pipelines/ goes down the layers or sideways within one,
and no module imports itself back through others (docs/layout.md, *Layout*).

The walk reads the source with `ast`: imports at the top of a module and inside functions alike.
`from package import name` is an arrow to the module `package/name.py` where there is one, else
to the package; `import a.b` is an arrow to a/b. The parent packages Python runs first are not
arrows: a model module imports act/models/registry.py, never act/models/__init__.py, which
imports the model modules (timm's `_registry.py`).
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WALKED = ("act", "pipelines")

# The layers, lowest first. An entry is a file, or a folder (ending in /) covering what lies below
# it; the longest entry that covers a module gives its layer. The method's registry sits with the
# step: it names each method's step loss functions (act/step/engine.py), and the config, which the
# step's distributed part reads, validates method.name against it.
LAYERS = (
    ("base", ("act/__init__.py", "act/errors.py", "act/schema.py", "act/graphs.py", "act/inputs.py")),
    ("datasets", ("act/datasets/",)),
    ("models", ("act/models/",)),
    ("pipelines and maths", ("pipelines/", "act/method/")),
    ("step", ("act/step/", "act/method/registry.py", "act/config.py")),
    ("run", ("act/run/",)),
    ("packs and sweeps", ("act/pack/", "act/sweep/")),
    ("commands", ("act/commands/", "act/__main__.py")),
)


def modules() -> list[str]:
    return sorted(str(f.relative_to(ROOT)) for top in WALKED for f in (ROOT / top).rglob("*.py"))


def module_file(dotted: str, known: set[str]) -> str | None:
    """The walked file of module or package `dotted`, or None (torch, numpy, ...)."""
    path = dotted.replace(".", "/")
    return next((f for f in (f"{path}.py", f"{path}/__init__.py") if f in known), None)


def package_of(module: str, level: int) -> str:
    """The package a relative import of `level` dots in `module` starts from."""
    parts = module.removesuffix(".py").split("/")
    return ".".join(parts[:len(parts) - level])


def targets(module: str, node: ast.AST, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [module_file(alias.name, known) for alias in node.names]
    base = node.module or ""
    if node.level:
        base = ".".join(filter(None, [package_of(module, node.level), base]))
    return [module_file(f"{base}.{alias.name}", known) or module_file(base, known) for alias in node.names]


def arrows() -> dict[str, set[str]]:
    """module -> the walked modules it imports (itself left out)."""
    known = set(modules())
    graph = {}
    for module in known:
        tree = ast.parse((ROOT / module).read_text(), module)
        found = {t for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                 for t in targets(module, node, known)}
        graph[module] = found - {None, module}
    return graph


def layer_of(module: str) -> int | None:
    """The index in LAYERS of `module`'s layer (None: no entry covers it)."""
    covering = [(len(entry), i) for i, (_, entries) in enumerate(LAYERS) for entry in entries
                if module == entry or (entry.endswith("/") and module.startswith(entry))]
    return max(covering)[1] if covering else None


def cycle_through(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A shortest path start -> ... -> start, or None."""
    paths, seen = [[start]], set()
    while paths:
        path = paths.pop(0)
        for nxt in sorted(graph[path[-1]]):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append(path + [nxt])
    return None


def test_the_walk_sees_imports_at_the_top_and_inside_functions():
    graph = arrows()
    assert "act/run/build.py" in graph["act/run/loop.py"]  # from act.run.build import ...
    assert "act/run/loop.py" in graph["act/commands/cli.py"]  # from act.run import loop, in a function
    assert "act/datasets/registry.py" in graph["act/config.py"]  # from act.datasets.registry import ...
    assert "act/datasets/__init__.py" in graph["act/config.py"]  # from act.datasets import dataset_names


def test_every_module_has_a_layer():
    unplaced = [m for m in modules() if layer_of(m) is None]
    assert not unplaced, f"no entry of LAYERS covers {', '.join(unplaced)}"


def test_no_module_imports_a_module_of_a_higher_layer():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
              for m, found in sorted(arrows().items()) for t in sorted(found) if layer_of(t) > layer_of(m)]
    assert not upward, "\n".join(upward)


def test_no_module_imports_itself_back_through_others():
    graph, cycles = arrows(), {}
    for module in sorted(graph):
        cycle = cycle_through(module, graph)
        if cycle and frozenset(cycle) not in cycles:  # one line per cycle, not one per module on it
            cycles[frozenset(cycle)] = " -> ".join(cycle)
    assert not cycles, "\n".join(sorted(cycles.values()))


def test_the_layout_page_states_the_layer_order():
    layout = (ROOT / "docs" / "layout.md").read_text().split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    assert " < ".join(name for name, _ in LAYERS) in " ".join(layout.split())  # across line breaks
