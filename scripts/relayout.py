"""Move ezchat's flat modules into one folder per layer, and rewrite every reference to them.

    python scripts/relayout.py --dry-run  # print what it would move and rewrite; change nothing
    python scripts/relayout.py            # do it (git mv, rewrite, ruff), staged, and report
    python scripts/relayout.py --commit   # the same, as two commits: the moves, then the aliases

Run it from a checkout of main whose work tree is clean (it refuses otherwise, so that its
changes are the only ones in the diff). It:

- ``git mv``s each module of ``MOVES`` into its layer's folder and gives each new folder an
  ``__init__.py`` that says what the layer holds (and imports nothing, except cli/, whose
  ``main`` stays the ``ezchat`` command's entry point ``ezchat.cli:main``);
- rewrites every import of a moved module in ezchat/, tests/, benchmarks/, scripts/ and
  screenshots/: ``from .x import``, ``from ezchat.x import``, ``from . import x``,
  ``import ezchat.x as``, relative imports inside the moved modules themselves;
- rewrites dotted module paths (``"ezchat.cli.load_model"`` in a monkeypatch, ``python -m
  ezchat.runners.cli``) and file paths (``ezchat/cpu.py``, ``"ezchat" / "cpu.py"``) in code,
  docstrings, README.md, pyproject.toml, benchmarks/RESULTS.md, .ci/ and scripts/*.sh;
- leaves the public module paths of ``COMPAT`` importable: each old file becomes an alias of the
  moved module (the same module object), and the package imports them so ``ez.model.X`` works;
- replaces the README's layout block, then runs ``ruff check --fix`` (import order) and
  ``ruff format`` on what it changed.

Modules it does not know (neither in ``MOVES`` nor in ``STAY``: new ones others added) stay
where they are; the report lists them so they can be placed by adding a row to ``MOVES`` and
running the script again (it skips what has moved already).
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "ezchat"

# old module (dotted, under ezchat) -> new module. One row per module; the layer order, bottom
# to top, is the one tests/test_layers.py enforces: foundation (the top-level modules of STAY),
# settings, chat, engine, backends, storage, session, runners, interfaces (tui, repl, cli).
MOVES: dict[str, str] = {
    # settings: files users edit and where they live; stdlib and platformdirs only
    "paths": "settings.paths",
    "userfiles": "settings.userfiles",
    "config": "settings.config",
    "modelpath": "settings.modelpath",
    # the conversation as data: no llama_cpp at import time
    "thread": "chat.thread",
    "formats": "chat.formats",
    "samplers": "chat.samplers",
    # modules on branches not yet merged when this table was written (a row whose file does
    # not exist is skipped)
    "reasoning": "chat.reasoning",
    "auto_format": "chat.auto_format",
    "context_stats": "chat.context_stats",
    "jinja_engine": "chat.jinja_engine",
    "jinja_caps": "chat.jinja_caps",
    "jinja_render": "chat.jinja_render",
    # the engine: the only code that imports llama_cpp
    "model": "engine.model",
    "decoder": "engine.decoder",
    "generation": "engine.generation",
    "textstream": "engine.textstream",
    "load_progress": "engine.load_progress",
    "gguf": "engine.gguf",
    "memory": "engine.memory",
    "calls": "engine.calls",
    "sampling": "engine.sampling",
    "cpu": "engine.cpu",  # stdlib only: scripts/setup.sh runs it by path before any install
    "runners.batched": "engine.batched",
    # storage: saved chats
    "store": "storage.store",
    "chats": "storage.chats",
    "chatfile": "storage.chatfile",
    "chatlocks": "storage.chatlocks",  # not yet merged when this table was written
    # the command line: typer lives here and nowhere else
    "cli": "cli.app",
    "runners.cli": "cli.batch",
    "loadbar": "cli.loadbar",
    "doctor": "cli.doctor",
    "server_options": "cli.server_options",  # not yet merged when this table was written
}

# Known modules that stay where they are. A trailing ".*" covers a whole folder.
STAY: set[str] = {
    "__init__",
    "__main__",
    # foundation: stdlib-only helpers every layer may use
    "errors",
    "utf8",
    "safetext",
    "interrupt",
    "crashguard",
    # settings -> a backend and a Thread, for the interfaces and the runners
    "session",
    # interfaces
    "repl",
    "tui.*",
    "backends.*",
    "runners.*",
}

# Old public paths that keep working as aliases of the moved module.
COMPAT = ("model", "thread", "formats", "samplers")

LAYER_DOCS = {
    "engine": "The engine: the only code that imports llama_cpp. Model loading and facts, GGUF "
    "headers, the decoder (KV cache, shift, state), the per-token generation loop, the sampler "
    "chain and batched decoding.",
    "chat": "The conversation as data: Thread and its messages, prompt formats and their "
    "rendering, sampler settings and presets. Nothing here loads llama_cpp at import time.",
    "storage": "Saved chats: the SQLite store, the glue between a stored chat and a live "
    "Thread, and chat files.",
    "settings": "Files users edit and where they live: the one TOML loader, the config file, "
    "paths, model lookup.",
    "cli": "The ``ezchat`` command (typer): thin commands that call the layers below.",
}

README_LAYOUT = """\
```
ezchat/            the package; __init__.py is the public surface (Model, Thread, RemoteModel,
                   formats, samplers). Layers, each importing only those above it in this list:
  errors, utf8, safetext, interrupt, crashguard   stdlib-only helpers every layer may use
  settings/        user files (one TOML loader), config, paths, model lookup
  chat/            the conversation as data: Thread, formats, sampler settings (no llama_cpp)
  engine/          the only code that imports llama_cpp: model, decoder, generation, sampler
                   chain, batched decoding, GGUF headers; cpu.py (build flags, thread count)
  backends/        what a Thread talks to: the local engine or an OpenAI-compatible server
  storage/         saved chats in SQLite, chat files
  session.py       options -> a loaded backend and a Thread, for the interfaces and runners
  runners/         many prompts through one model
  tui/ repl.py cli/   the interfaces (cli/ holds doctor and batch); tests/test_layers.py
                   checks these arrows
formats/ samplers/ shipped prompt formats and sampler presets (TOML)
scripts/           setup.sh, test.sh, llama_tools.py / build-llama-server.sh (llama.cpp's tools)
tests/             pytest against the real default model
benchmarks/        speed figures against raw llama-cpp-python and llama.cpp
screenshots/       images of the app, made by screenshots/make_screenshots.py
```"""

# What a new layer folder's __init__.py holds besides its docstring. The command keeps its
# entry point ezchat.cli:main (pyproject.toml, and the scripts pip already installed).
LAYER_INIT_CODE = {
    "cli": (
        "\n\ndef main() -> None:\n"
        '    """The ``ezchat`` command (ezchat.cli.app). Imported when called, not with the package, so\n'
        '    that ``python -m ezchat.cli.batch`` finds its module not yet loaded."""\n'
        "    from .app import main as run_command\n\n"
        "    run_command()\n"
    )
}
MOVE_MESSAGE = (
    "Move the flat modules into one folder per layer (scripts/relayout.py)\n\n"
    "engine/, chat/, storage/, settings/, cli/; imports, module paths and file paths rewritten."
)
ALIAS_MESSAGE = (
    "Keep ezchat.model, ezchat.thread, ezchat.formats and ezchat.samplers importable\n\n"
    "Each is the moved module under its old name (scripts/relayout.py)."
)
# Text the rules must leave alone: the command's entry point stays ezchat.cli:main.
KEEP = {"ezchat.cli.app:main": "ezchat.cli:main"}

CODE_DIRS = ("ezchat", "tests", "benchmarks", "scripts", "screenshots")
TEXT_FILES = ("README.md", "pyproject.toml", "benchmarks/RESULTS.md")
TEXT_GLOBS = (".ci/*", "scripts/*.sh")


def module_file(module: str) -> Path:
    return REPO / PACKAGE / (module.replace(".", "/") + ".py")


def is_alias(path: Path) -> bool:
    """A compat module this script wrote (so the module has moved already)."""
    return path.is_file() and "sys.modules[__name__] =" in path.read_text(encoding="utf-8")


def all_modules() -> list[str]:
    names = []
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        rel = path.relative_to(REPO / PACKAGE).with_suffix("")
        if "_shipped" in rel.parts:
            continue
        names.append(".".join(rel.parts))
    return names


def known(module: str) -> bool:
    if module in MOVES or module in MOVES.values() or module in STAY:
        return True
    if module.endswith(".__init__") and module[: -len(".__init__")] in {
        m.split(".")[0] for m in MOVES.values()
    }:
        return True
    return any(s.endswith(".*") and module.startswith(s[:-1]) for s in STAY)


# --- import rewriting ----------------------------------------------------------------------------


def package_of(module: str, is_package: bool) -> str:
    """The package a module's relative imports are relative to."""
    return module if is_package else module.rpartition(".")[0]


def resolve(from_module: str | None, level: int, package: str) -> str:
    if level == 0:
        return from_module or ""
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([from_module] if from_module else []))


def relative(target: str, package: str) -> str:
    """``target`` (absolute) written relative to ``package``: ``..chat.samplers``."""
    here, there = package.split("."), target.split(".")
    common = 0
    while common < min(len(here), len(there)) and here[common] == there[common]:
        common += 1
    dots = "." * (len(here) - common + 1)
    return dots + ".".join(there[common:])


class Rewriter:
    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames  # full dotted old -> new, e.g. ezchat.model -> ezchat.engine.model

    def new_name(self, module: str) -> str:
        """The new dotted name of ``module`` or of the moved module it lies inside."""
        for old, new in sorted(self.renames.items(), key=lambda item: -len(item[0])):
            if module == old or module.startswith(old + "."):
                return new + module[len(old) :]
        return module

    def rewrite_file(
        self, path: Path, old_module: str | None, new_module: str | None, rules: TextRules
    ) -> str:
        """The file's text with its imports rewritten, and dotted or file paths in the rest of it
        (strings, comments) through ``rules``. ``old_module``/``new_module``: the file's own
        dotted name before and after the move (None outside the package)."""
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        is_package = path.name == "__init__.py"
        old_pkg = package_of(old_module, is_package) if old_module else ""
        new_pkg = package_of(new_module, is_package) if new_module else ""
        lines = text.splitlines(keepends=True)
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))
        edits: list[tuple[int, int, str]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                replacement = self._import_from(node, old_pkg, new_pkg, lines)
            elif isinstance(node, ast.Import):
                replacement = self._import(node)
            else:
                continue
            if replacement is not None:
                start = offsets[node.lineno - 1] + node.col_offset
                end = offsets[node.end_lineno - 1] + node.end_col_offset
                replacement = replacement.replace("\n", "\n" + " " * node.col_offset)
                edits.append((start, end, replacement))
        # An import is rewritten once, by the tree; the text between imports by the rules. (The
        # rules must never see a rewritten import: ezchat.cli -> ezchat.cli.app would apply twice.)
        pieces, done = [], 0
        for start, end, replacement in sorted(edits):
            pieces += [rules.apply(text[done:start]), replacement]
            done = end
        pieces.append(rules.apply(text[done:]))
        return "".join(pieces)

    def _segment(self, node: ast.stmt, lines: list[str]) -> str:
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            return lines[first][node.col_offset : node.end_col_offset]
        body = [lines[first][node.col_offset :], *lines[first + 1 : last]]
        return "".join(body) + lines[last][: node.end_col_offset]

    def _written(self, target: str, new_pkg: str, was_relative: bool) -> str:
        return relative(target, new_pkg) if was_relative and new_pkg else target

    def _import_from(
        self, node: ast.ImportFrom, old_pkg: str, new_pkg: str, lines: list[str]
    ) -> str | None:
        source = resolve(node.module, node.level, old_pkg)
        if not (source == PACKAGE or source.startswith(PACKAGE + ".")):
            return None
        was_relative = node.level > 0
        target = self.new_name(source)
        # Names imported from a package may be modules that moved on their own
        # (``from . import formats``): group the names by where each now comes from.
        groups: dict[str, list[ast.alias]] = {}
        for alias in node.names:
            child = f"{source}.{alias.name}"
            moved = self.new_name(child)
            where = moved.rpartition(".")[0] if moved != child else target
            if moved != child and moved.rpartition(".")[2] != alias.name:
                # the module was renamed as it moved: import it under its old name
                groups.setdefault(where, []).append(
                    ast.alias(moved.rpartition(".")[2], alias.asname or alias.name)
                )
                continue
            groups.setdefault(where, []).append(alias)
        new_written = {where: self._written(where, new_pkg, was_relative) for where in groups}
        old_written = "." * node.level + (node.module or "")
        if len(groups) == 1 and list(groups.values())[0] == node.names:
            written = next(iter(new_written.values()))
            if written == old_written:
                return None
            segment = self._segment(node, lines)
            # keep the statement's own layout (parentheses, comments): change only its module
            return re.sub(r"^from\s+[.\w]+", f"from {written}", segment, count=1)
        statements = []
        for where, aliases in groups.items():
            names = ", ".join(
                a.name if not a.asname or a.asname == a.name else f"{a.name} as {a.asname}"
                for a in aliases
            )
            statements.append(f"from {new_written[where]} import {names}")
        return "\n".join(statements)

    def _import(self, node: ast.Import) -> str | None:
        changed = False
        parts = []
        for alias in node.names:
            name = self.new_name(alias.name)
            changed |= name != alias.name
            parts.append(name if alias.asname is None else f"{name} as {alias.asname}")
        if not changed:
            return None
        return "import " + ", ".join(parts)


# --- text rewriting (strings, docs, shell) ---------------------------------------------------------


class TextRules:
    """Dotted module paths and file paths of moved modules, rewritten in one pass, so that a
    replacement is never matched again (``ezchat.runners.cli`` -> ``ezchat.cli.batch`` must not
    then become ``ezchat.cli.app.batch``)."""

    def __init__(self, renames: dict[str, str]) -> None:
        self.table: dict[str, str] = {}
        for old, new in renames.items():
            self.table[old] = new
            self.table[old.replace(".", "/") + ".py"] = new.replace(".", "/") + ".py"
            # pathlib's spelling: "ezchat" / "cpu.py"
            old_parts, new_parts = old.split("."), new.split(".")
            self.table[
                " / ".join(f'"{p}"' for p in old_parts[:-1]) + f' / "{old_parts[-1]}.py"'
            ] = " / ".join(f'"{p}"' for p in new_parts[:-1]) + f' / "{new_parts[-1]}.py"'
        choices = "|".join(re.escape(k) for k in sorted(self.table, key=len, reverse=True))
        # not inside a longer name: ezchat.model but not ezchat.modelpath or x.ezchat.model
        self.pattern = re.compile(rf"(?<![\w.])(?:{choices})(?![\w])") if self.table else None

    def apply(self, text: str) -> str:
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda match: self.table[match.group(0)], text)


def replace_readme_layout(text: str) -> str:
    match = re.search(r"(## Layout\n\n)```\n.*?\n```", text, flags=re.S)
    if match is None:
        return text
    return text[: match.start()] + match.group(1) + README_LAYOUT + text[match.end() :]


# --- the run -----------------------------------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout


def alias_text(old: str, new: str) -> str:
    parent, _, leaf = new.rpartition(".")
    return (
        f'"""``{PACKAGE}.{old}`` is ``{PACKAGE}.{new}``, under its old name: the same module '
        "object, so\nimports, attributes and monkeypatches reach one place. New code imports "
        f'``{PACKAGE}.{new}``."""\n\n'
        "import sys\n\n"
        f"from .{parent} import {leaf} as _moved\n\n"
        "sys.modules[__name__] = _moved\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    parser.add_argument(
        "--commit", action="store_true", help="commit: the moves, then the compat aliases"
    )
    args = parser.parse_args(argv)

    if not args.dry_run and git("status", "--porcelain", "--untracked-files=no").strip():
        print(
            "relayout: the work tree has uncommitted changes (a run without --commit leaves its "
            "own staged); commit or stash them first"
        )
        return 2

    modules = all_modules()
    to_move = {
        old: new
        for old, new in MOVES.items()
        if module_file(old).is_file() and not is_alias(module_file(old))
    }
    blocked = {old: new for old, new in to_move.items() if module_file(new).exists()}
    for old in blocked:
        del to_move[old]
    unknown = [m for m in modules if not known(m)]
    renames = {f"{PACKAGE}.{old}": f"{PACKAGE}.{new}" for old, new in to_move.items()}

    print(f"relayout: moving {len(to_move)} modules")
    for old, new in to_move.items():
        print(f"  {PACKAGE}/{old.replace('.', '/')}.py -> {PACKAGE}/{new.replace('.', '/')}.py")
    for old, new in blocked.items():
        print(f"  NOT MOVED {old}: {PACKAGE}/{new.replace('.', '/')}.py exists already")

    # 1. rewrite imports in place, before the move (each file knows its old name)
    rewriter = Rewriter(renames)
    rules = TextRules(renames)
    changed: list[Path] = []
    for top in CODE_DIRS:
        for path in sorted((REPO / top).rglob("*.py")):
            if (
                "_shipped" in path.parts
                or ".venv" in path.parts
                or path == Path(__file__).resolve()
            ):
                continue
            old_module = new_module = None
            if top == PACKAGE:
                rel = path.relative_to(REPO / PACKAGE).with_suffix("")
                old_module = ".".join((PACKAGE, *rel.parts)).removesuffix(".__init__")
                short = old_module.removeprefix(PACKAGE + ".")
                new_module = rewriter.new_name(old_module) if short in to_move else old_module
                if path.name == "__init__.py":
                    old_module = new_module = ".".join((PACKAGE, *rel.parts[:-1]))
            text = path.read_text(encoding="utf-8")
            new_text = rewriter.rewrite_file(path, old_module, new_module, rules)
            if new_text != text:
                changed.append(path)
                if not args.dry_run:
                    path.write_text(new_text, encoding="utf-8")
    text_paths = [REPO / name for name in TEXT_FILES]
    for pattern in TEXT_GLOBS:
        text_paths += sorted(REPO.glob(pattern))
    for path in text_paths:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new_text = rules.apply(text)
        for rewritten, kept in KEEP.items():
            new_text = new_text.replace(rewritten, kept)
        if path.name == "README.md" and to_move:
            new_text = replace_readme_layout(new_text)
        if new_text != text:
            changed.append(path)
            if not args.dry_run:
                path.write_text(new_text, encoding="utf-8")
    print(f"relayout: rewrote references in {len(changed)} files")
    for path in changed:
        print(f"  {path.relative_to(REPO)}")

    if args.dry_run:
        report_unknown(unknown)
        return 0

    # 2. the moves and the new folders' __init__.py (one commit with --commit: pure renames
    # plus rewritten imports, so git log --follow and blame see each module's history)
    for old, new in to_move.items():
        destination = module_file(new)
        init = destination.parent / "__init__.py"
        if not init.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            layer = new.split(".")[0]
            doc = LAYER_DOCS.get(layer, f"The {layer} layer.")
            init.write_text(f'"""{wrap(doc)}"""\n' + LAYER_INIT_CODE.get(layer, ""), "utf-8")
            git("add", str(init.relative_to(REPO)))
        git("mv", str(module_file(old).relative_to(REPO)), str(destination.relative_to(REPO)))
    tidy()
    if args.commit:
        git("commit", "-q", "-m", MOVE_MESSAGE)

    # 3. the old public paths, as aliases of the moved modules
    for old in COMPAT:
        if old in to_move:
            path = module_file(old)
            path.write_text(alias_text(old, to_move[old]), encoding="utf-8")
            git("add", str(path.relative_to(REPO)))
    add_compat_imports(to_move)
    tidy()
    if args.commit:
        git("commit", "-q", "-m", ALIAS_MESSAGE)
    report_unknown(unknown)
    done = "committed" if args.commit else "staged, not committed"
    print(f"relayout: done ({done}); check with: ruff check . && pytest tests/test_layers.py")
    return 0


def tidy() -> None:
    """Import order and formatting of what changed (ruff, the project's own), then stage it."""
    ruff = REPO / ".venv" / "bin" / "ruff"
    ruff_cmd = [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]
    targets = [str(p) for p in CODE_DIRS if (REPO / p).is_dir()]
    subprocess.run([*ruff_cmd, "check", "--fix", "-q", "--select", "I,F401", *targets], cwd=REPO)
    subprocess.run([*ruff_cmd, "format", "-q", *targets], cwd=REPO)
    git("add", "-u")


def add_compat_imports(to_move: dict[str, str]) -> None:
    """``ez.model``/``ez.thread`` as attributes of the package, without an explicit import."""
    init = REPO / PACKAGE / "__init__.py"
    text = init.read_text(encoding="utf-8")
    tree = ast.parse(text)
    bound = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    missing = [name for name in COMPAT if name in to_move and name not in bound]
    if not missing:
        return
    last = max(n.end_lineno for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom))
    lines = text.splitlines(keepends=True)
    line = (
        "# the old public module paths (ezchat.model, ...), as attributes of the package too\n"
        f"from . import {', '.join(missing)}  # noqa: F401\n"
    )
    lines.insert(last, line)
    init.write_text("".join(lines), encoding="utf-8")


def wrap(text: str, width: int = 96) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)


def report_unknown(unknown: list[str]) -> None:
    if not unknown:
        print("relayout: every module of ezchat/ is placed")
        return
    print(f"relayout: {len(unknown)} modules are not in the mapping and stayed where they are;")
    print("  add a row to MOVES (or STAY) in scripts/relayout.py for each, then run it again:")
    for module in unknown:
        print(f"  {PACKAGE}/{module.replace('.', '/')}.py")


if __name__ == "__main__":
    sys.exit(main())
