"""No two product modules import each other at module level, directly or round a longer loop.

import-linter (`make lint`) checks which app may import which; it counts imports inside
functions too, so it cannot state the rule that keeps services and tasks apart: a service
imports its task at the top and queues it on commit, a task imports its service inside its
body. This test reads every product module's module-level imports (class bodies included,
function bodies not) and fails on any cycle among them.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = ("config", "supporters", "campaigns", "mailings", "privacy", "operations")


def product_modules() -> dict[str, Path]:
    modules = {}
    for package in PRODUCT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def module_level_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules `name` imports while it is being imported."""
    is_package = path.name == "__init__.py"
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue  # runs later, when called
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                for alias in node.names:
                    # `from package import module` imports the module; a name, its module.
                    submodule = f"{base}.{alias.name}"
                    found.add(submodule if submodule in modules else base)
            visit(ast.iter_child_nodes(node))

    visit(ast.parse(path.read_text()).body)
    imported = set()
    for module in found:
        # Importing a.b.c runs a, a.b and a.b.c.
        parts = module.split(".")
        imported.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    # A module's own packages are imported before it, whatever it says.
    parts = name.split(".")
    ancestors = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    return {module for module in imported if module in modules and module not in ancestors}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting, done = [], set()

    def walk(module):
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        if module in done:
            return None
        visiting.append(module)
        for imported in sorted(graph[module]):
            cycle = walk(imported)
            if cycle:
                return cycle
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = walk(module)
        if cycle:
            return cycle
    return None


def test_no_product_modules_import_each_other_in_a_loop_at_module_level():
    modules = product_modules()
    graph = {name: module_level_imports(name, path, modules) for name, path in modules.items()}
    assert "campaigns.tasks" in graph and "mailings.sending.control" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
