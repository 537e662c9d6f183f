"""The layer contract: which part of ezchat may import which, read from the code with ``ast``.

The layers, bottom to top (a module imports its own layer and the ones below it, never one
above, never a peer at the same height):

    foundation  errors, utf8, safetext, interrupt, crashguard, gates: stdlib-only helpers
    settings    files users edit and where they live
    chat        the conversation as data: Thread, formats, sampler settings
    engine      the only code that imports llama_cpp
    backends    what a Thread talks to (the engine, or a server)
    storage     saved chats
    session     options -> a backend and a Thread
    runners     many prompts through one model
    tui | repl  the interfaces (peers: neither imports the other)
    cli         the command, which opens the TUI or the REPL
    package     ezchat/__init__.py, the public surface, and the old module paths kept as aliases

The chat layer sits below the engine: the engine builds llama.cpp's sampler chain from the
chat's ``SamplerSettings``, while a Thread talks to whatever backend it is given and names the
engine's types only for type checkers. Imports under ``if TYPE_CHECKING:`` are not arrows (they
never run); imports inside functions are, and are reported apart from module-level ones.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "ezchat"
PACKAGE_DIR = ROOT / PACKAGE

pytestmark = pytest.mark.skipif(
    not (PACKAGE_DIR / "engine").is_dir(),
    reason="the layer folders do not exist yet: run scripts/relayout.py",
)

# The package itself and the old module paths kept as aliases of the moved modules: exact
# names, not prefixes (ezchat.engine.model is an alias; ezchat.settings.modelpath would not be one).
PACKAGE_MODULES = ("", "__main__", "model", "thread", "formats", "samplers")
# (layer, rank, module prefixes). Same rank, different layer: peers, which may not import
# each other.
LAYERS: list[tuple[str, int, tuple[str, ...]]] = [
    ("foundation", 0, ("errors", "utf8", "safetext", "interrupt", "crashguard", "gates")),
    ("settings", 1, ("settings",)),
    ("chat", 2, ("chat",)),
    ("engine", 3, ("engine",)),
    ("backends", 4, ("backends",)),
    ("storage", 5, ("storage",)),
    ("session", 6, ("session",)),
    ("runners", 7, ("runners",)),
    ("tui", 8, ("tui",)),
    ("repl", 8, ("repl",)),
    ("cli", 9, ("cli",)),
    ("package", 10, PACKAGE_MODULES),
]
NATIVE = "llama_cpp"
UI_LIBRARIES = ("textual", "rich", "prompt_toolkit", "typer")
# Each interface library belongs to one interface; rich also draws the runners' progress bars.
LIBRARY_HOMES = {"textual": ("tui",), "prompt_toolkit": ("repl",), "typer": ("cli",)}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # an ezchat module, or a third-party top-level name
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if "_shipped" not in path.parts
    }


MODULES = all_modules()


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path) -> Iterator[Import]:
    """Every import that runs, with what it reaches: an ezchat module (``from . import x``
    reaches the module ``x``), or the top-level name of another package."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def walk(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                yield from (i for branch in child.orelse for i in walk_one(branch, in_function))
                continue
            yield from walk_one(child, in_function)

    def walk_one(node: ast.AST, in_function: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, reach(alias.name), node.lineno, in_function)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                child = f"{source}.{alias.name}"
                if child in MODULES:
                    yield Import(module, child, node.lineno, in_function)
                elif source == PACKAGE and alias.name.startswith("__"):
                    continue  # the package's metadata (__version__), not a layer
                else:
                    yield Import(module, reach(source), node.lineno, in_function)
        else:
            inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from walk(node, inner)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")), False)


def reach(name: str) -> str:
    """An ezchat module as named, or the longest named prefix that is one; else the top name."""
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        while name not in MODULES and "." in name:
            name = name.rpartition(".")[0]
        return name
    return name.split(".")[0]


IMPORTS = [i for module, path in MODULES.items() for i in imports_of(module, path)]


def layer_of(module: str) -> tuple[str, int] | None:
    short = module.removeprefix(PACKAGE).removeprefix(".")
    best: tuple[int, str, int] | None = None
    for layer, rank, prefixes in LAYERS:
        for prefix in prefixes:
            exact = layer == "package"
            matches = (
                short == prefix if exact else (short == prefix or short.startswith(prefix + "."))
            )
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer, rank)
    return None if best is None else (best[1], best[2])


def in_layer(module: str, *layers: str) -> bool:
    placed = layer_of(module)
    return placed is not None and placed[0] in layers


def describe(imports: list[Import]) -> str:
    imports = list(dict.fromkeys(imports))  # one line per statement, not per imported name
    return "\n".join(
        f"  {i.source} ({MODULES[i.source].relative_to(ROOT)}:{i.line}) imports {i.target}"
        + (" inside a function" if i.in_function else "")
        for i in imports
    )


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if layer_of(m) is None]
    assert not unplaced, (
        "modules in no layer (move them into a layer's folder, or add them to LAYERS):\n  "
        + "\n  ".join(unplaced)
    )


def test_the_contract_sees_the_imports() -> None:
    # A walker that found nothing would pass every rule below: these arrows exist by design.
    seen = {(i.source, i.target) for i in IMPORTS}
    assert ("ezchat.engine.model", NATIVE) in seen
    assert ("ezchat", "ezchat.engine.model") in seen
    assert ("ezchat.tui.app", "textual") in seen
    assert any(i.in_function for i in IMPORTS)


def test_only_the_engine_imports_llama_cpp() -> None:
    wrong = [i for i in IMPORTS if i.target == NATIVE and not in_layer(i.source, "engine")]
    assert not wrong, "llama_cpp imported outside ezchat/engine:\n" + describe(wrong)


def test_interfaces_never_import_llama_cpp() -> None:
    wrong = [i for i in IMPORTS if i.target == NATIVE and in_layer(i.source, "tui", "repl", "cli")]
    assert not wrong, "an interface imports llama_cpp:\n" + describe(wrong)


def test_the_engine_imports_no_ui_library() -> None:
    wrong = [i for i in IMPORTS if i.target in UI_LIBRARIES and in_layer(i.source, "engine")]
    assert not wrong, "the engine imports a UI library:\n" + describe(wrong)


def test_each_interface_library_stays_in_its_interface() -> None:
    wrong = [
        i
        for i in IMPORTS
        if i.target in LIBRARY_HOMES and not in_layer(i.source, *LIBRARY_HOMES[i.target])
    ]
    assert not wrong, "typer/textual/prompt_toolkit outside their interface:\n" + describe(wrong)


def module_level_closure(start: str) -> dict[str, list[str]]:
    """What importing ``start`` runs, module by module (the path that reached each), leaving
    out the root package's __init__, which every submodule import runs anyway."""
    paths = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for i in IMPORTS:
            if i.source != current or i.in_function or i.target in paths or i.target == PACKAGE:
                continue
            paths[i.target] = [*paths[current], i.target]
            if i.target in MODULES:
                todo.append(i.target)
    return paths


def test_the_conversation_layer_loads_no_llama_cpp_at_import() -> None:
    chat = [m for m in MODULES if in_layer(m, "chat")]
    assert chat, "no modules in ezchat/chat"
    loading = {
        m: module_level_closure(m)[NATIVE] for m in chat if NATIVE in module_level_closure(m)
    }
    assert not loading, "importing the conversation layer loads llama_cpp:\n" + "\n".join(
        f"  {' -> '.join(path)}" for path in loading.values()
    )


def test_the_conversation_layer_imports_no_interface() -> None:
    wrong = [
        i
        for i in IMPORTS
        if in_layer(i.source, "chat")
        and (in_layer(i.target, "tui", "repl", "cli") or i.target in UI_LIBRARIES)
    ]
    assert not wrong, "the conversation layer imports an interface:\n" + describe(wrong)


@pytest.mark.parametrize("in_functions", [False, True], ids=["module-level", "with-functions"])
def test_no_import_cycles(in_functions: bool) -> None:
    # Module level, a cycle breaks imports outright; through functions it still ties two
    # modules into one (store <-> chats was one), so both are checked, and reported apart.
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in IMPORTS:
        if (in_functions or not i.in_function) and i.target in MODULES and i.target != i.source:
            graph[i.source].add(i.target)
    cycles = strongly_connected(graph)
    where = "counting imports inside functions" if in_functions else "at module level"
    assert not cycles, f"import cycles {where}:\n" + "\n".join(
        "  " + " <-> ".join(sorted(c)) for c in cycles
    )


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm; the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


def upward(imports: list[Import]) -> list[Import]:
    wrong = []
    for i in imports:
        if i.target not in MODULES:
            continue
        source, target = layer_of(i.source), layer_of(i.target)
        if source is None or target is None or source[0] == target[0]:
            continue
        if target[1] >= source[1]:
            wrong.append(i)
    return wrong


@pytest.mark.parametrize("in_function", [False, True], ids=["module-level", "in-functions"])
def test_arrows_point_down(in_function: bool) -> None:
    imports = [i for i in IMPORTS if i.in_function == in_function]
    wrong = upward(imports)
    assert not wrong, (
        "imports that point up the layers (or across to a peer); see this file's docstring:\n"
        + describe(wrong)
    )


# The engine's plain data (results.py) and the calls written over the Backend protocol
# (calls.py) are what the remote backends, the Thread and storage name: they must not load
# the native library, or a RemoteModel would need llama.cpp.
ENGINE_MODULES_WITHOUT_NATIVE = ("ezchat.engine.results", "ezchat.engine.calls")
# Importing these (and everything they import) leaves llama_cpp unloaded: a chat with a
# server, a saved chat, a session's choices need no native library until a local model loads.
IMPORTS_WITHOUT_NATIVE = (
    "ezchat",
    "ezchat.backends.remote",
    "ezchat.chat.thread",
    "ezchat.storage.store",
    "ezchat.session",
    *ENGINE_MODULES_WITHOUT_NATIVE,
)


@pytest.mark.parametrize("module", ENGINE_MODULES_WITHOUT_NATIVE)
def test_the_engines_plain_modules_load_no_llama_cpp(module: str) -> None:
    path = module_level_closure(module).get(NATIVE)
    assert path is None, f"{module} loads llama_cpp: {' -> '.join(path or [])}"


@pytest.mark.parametrize("module", IMPORTS_WITHOUT_NATIVE)
def test_importing_leaves_llama_cpp_unloaded(module: str) -> None:
    # A real import in a fresh interpreter, so that the package's __init__ and anything the
    # ast walk cannot see (an import by a computed name) count too.
    probe = (
        f"import sys, {module}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'llama_cpp')\n"
        "print(','.join(loaded))\n"
    )
    result = _run_fresh(probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"importing {module} loaded {result.stdout.strip()}"


def test_the_package_still_offers_the_names_it_loads_on_use() -> None:
    # ez.Model, ez.model (the old path) and ez.runners load llama_cpp, so they come on first
    # use; they must still be there, as the same objects as their modules'.
    probe = (
        "import sys, ezchat as ez\n"
        "assert 'llama_cpp' not in sys.modules\n"
        "from ezchat import Model\n"
        "import ezchat.engine.model, ezchat.runners\n"
        "assert Model is ezchat.engine.model.Model is ez.Model\n"
        "assert ez.model is ezchat.engine.model\n"
        "assert ez.model.ModelUnloadedException is ez.ModelUnloadedException\n"
        "assert ez.runners is ezchat.runners\n"
        "assert {'Model', 'model', 'runners'} <= set(dir(ez))\n"
        "print('ok')\n"
    )
    result = _run_fresh(probe)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def _run_fresh(probe: str) -> subprocess.CompletedProcess:
    """``probe`` in a fresh interpreter that imports this checkout."""
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
