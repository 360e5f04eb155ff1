"""The layout's promises, checked on the source: no import cycle, no private helper used across modules,
no module-level ``__getattr__``, every compiled twin beside its reference with the reference's names and
parameters, and every ``refimpl.…`` name written in the docs importable."""

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "refimpl"
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``from … import`` names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    is_package = MODULES[module].name == "__init__.py"
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> tuple[set[str], list[str]]:
    """(refimpl modules `module` imports anywhere in its body, private names it takes from them)."""
    tree = ast.parse(MODULES[module].read_text())
    targets, private = set(), []
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in MODULES:
                    targets.add(a.name)
                    aliases[(a.asname or a.name).split(".")[0]] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for a in node.names:
                full = f"{base}.{a.name}"
                if full in MODULES:                                       # from package import module
                    targets.add(full)
                    aliases[a.asname or a.name] = full
                elif base in MODULES:
                    targets.add(base)
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        private.append(f"{base}.{a.name}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            private.append(f"{aliases[node.value.id]}.{node.attr}")
    targets.discard(module)
    # a package's __init__ is imported with any of its modules: count the parent package too
    return {t for t in targets if not module.startswith(t + ".")}, private


GRAPH = {m: _imports(m)[0] for m in MODULES}


def test_no_import_cycle():
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_private_helper_is_imported_across_modules():
    used = [name for m in MODULES for name in _imports(m)[1]]
    assert not used, f"private names used outside their module: {used}"


def test_no_module_level_getattr():
    offenders = [m for m, p in MODULES.items()
                 if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__"
                        for n in ast.parse(p.read_text()).body)]
    assert not offenders, offenders


def test_infrastructure_imports_nothing_above_it():
    shared = {"refimpl", "refimpl.errors", "refimpl.validate", "refimpl.fileio", "refimpl.progress",
              "refimpl.registry", "refimpl.plotting", "refimpl.compiled", "refimpl.atomics",
              "refimpl.runstore", "refimpl.tasks", "refimpl.cluster"}
    for m in shared & set(MODULES):
        assert GRAPH[m] <= shared, f"{m} imports {sorted(GRAPH[m] - shared)}"


# Each twin and the reference passes it mirrors (same name, same parameters).
TWINS = {
    "refimpl.feature_collapse.layernorm": ["forward", "backward"],
    "refimpl.feature_collapse.model": ["embed", "forward", "cross_entropy", "backward", "loss_and_grads",
                                       "sgd_step"],
    "refimpl.feature_collapse.exact": ["check_inputs", "score_tables", "risk0_and_phi", "lemma_s",
                                       "risk0_and_grads"],
    "refimpl.dufm.model": ["loss_and_grads"],
}


@pytest.mark.parametrize("reference", sorted(TWINS))
def test_every_twin_sits_beside_its_reference_with_its_names_and_parameters(reference):
    ref = importlib.import_module(reference)
    twin = importlib.import_module(reference + "_numba")
    assert Path(twin.__file__).parent == Path(ref.__file__).parent
    for name in TWINS[reference]:
        want = [p for p in inspect.signature(getattr(ref, name)).parameters.values() if p.name != "backend"]
        got = list(inspect.signature(getattr(twin, name)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in got] == [(p.name, p.kind, p.default) for p in want], \
            f"{twin.__name__}.{name}{inspect.signature(getattr(twin, name))} vs {reference}.{name}"


def test_every_numba_module_has_a_reference():
    for module in MODULES:
        if module.endswith("_numba"):
            assert module[: -len("_numba")] in MODULES, f"{module} has no reference module beside it"


def _doc_names():
    for doc in DOCS:
        for name in sorted(set(re.findall(r"\brefimpl(?:\.[A-Za-z_][A-Za-z0-9_]*)+", doc.read_text()))):
            yield pytest.param(name, id=f"{doc.name}:{name}")


def _importable(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("name", list(_doc_names()))
def test_every_refimpl_name_in_the_docs_imports(name):
    assert _importable(name), f"{name} is written in the docs but does not import"


def _doc_paths():
    for doc in DOCS:
        text = doc.read_text()
        pattern = r"(?<![\w/.])(?:tests|refimpl|docs|figures)/[a-z0-9_./-]+\.(?:py|md|png)"
        for path in sorted(set(re.findall(pattern, text))):
            yield pytest.param(path, id=f"{doc.name}:{path}")


@pytest.mark.parametrize("path", list(_doc_paths()))
def test_every_file_named_in_the_docs_exists(path):
    assert (ROOT / path).exists(), f"{path} is named in the docs but does not exist"
