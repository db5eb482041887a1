"""The package's layer order holds: every import arrow in gandiag/ points down.

The order is read from README.md's `## Layout` section, so the document and this test
cannot drift apart. Each numbered line there is one layer, bottom (1) to top, and names
its units in backticks before its first colon: `core/` a subpackage, `cli.py` a top-level
module, `__init__.py` the package's own. A unit is a top-level subpackage of gandiag
(everything under `gandiag/core/` is the unit `core`) or a top-level module.

Every import counts: at module level, inside functions, under `if TYPE_CHECKING:`,
relative ones, and `importlib.import_module` / `__import__` with a literal name. A module
may import its own unit and any lower layer; the top-level modules all belong to the
package `gandiag` itself, so they may import one another. Never a sibling unit on the
same layer, never a higher layer, and never a cycle between units.

The checker is plain functions of a package folder and a list of layers; the self-tests
at the end run them on a small package planted with one violation of each kind, so these
tests cannot pass by checking nothing.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gandiag"
README = ROOT / "README.md"
MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    """One import of a unit from a module: where it is, what it says, what it reaches."""

    path: str  # as written in messages: gandiag/detect/live.py
    line: int
    text: str  # the import statement (or call), on one line
    source: str  # the importing module's unit
    target: str  # the imported unit; "__init__" for the package root itself


@dataclass(frozen=True)
class Violation:
    kind: str  # "placement", "cycle" or "direction"
    message: str


# ---------------------------------------------------------------- the README's order


def layers_from_readme(text: str) -> list[list[str]]:
    """The units of each layer, bottom first, from the numbered list of the `## Layout`
    section: the backticked names before each item's first colon."""
    section = re.search(r"^## Layout[^\n]*\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    if section is None:
        raise AssertionError("README.md has no '## Layout' section; it states the layer order "
                             "that tests/test_layout.py checks: add it back")
    items: list[tuple[int, str]] = []
    for line in section.group(1).splitlines():
        numbered = re.match(r"(\d+)\.\s+(.*)", line)
        if numbered:
            items.append((int(numbered.group(1)), numbered.group(2)))
        elif items and line.startswith((" ", "\t")) and line.strip():  # a wrapped item
            items[-1] = (items[-1][0], f"{items[-1][1]} {line.strip()}")
    numbers = [number for number, _ in items]
    if numbers != list(range(1, len(items) + 1)) or len(items) < 2:
        raise AssertionError(f"README.md's Layout section: expected a numbered list 1., 2., ... "
                             f"(one item per layer, bottom first), found the numbers {numbers}")
    layers = []
    for number, item in items:
        head = item.split(":", 1)[0]
        names = [_unit_name(name) for name in re.findall(r"`([^`]+)`", head)]
        if not names:
            raise AssertionError(f"README.md's Layout section, layer {number}: expected its units "
                                 f"in backticks before the first colon, got {item!r}")
        layers.append(names)
    return layers


def _unit_name(written: str) -> str:
    """`core/`, `gandiag/core`, `cli.py` and `cli` all name a unit the same way."""
    name = written.strip()
    for prefix in ("gandiag/", "gandiag."):
        name = name.removeprefix(prefix)
    return name.removesuffix("/").removesuffix(".py")


# ---------------------------------------------------------------- imports


def _unit_of(relative: Path) -> str:
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def units_on_disk(package: Path) -> dict[str, bool]:
    """Every unit of `package`, mapped to whether it is a top-level module (not a subpackage)."""
    return {_unit_of(path.relative_to(package)): len(path.relative_to(package).parts) == 1
            for path in package.rglob("*.py")}


def _module_name(package: Path, path: Path) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str | None, level: int, current: str, is_package: bool) -> str:
    """The absolute name of `from <level dots><module> import ...` inside `current`."""
    if level == 0:
        return module or ""
    parts = current.split(".") if is_package else current.split(".")[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([module] if module else []))


def _literal_import_call(node: ast.Call) -> str | None:
    """The module named by `importlib.import_module("...")` or `__import__("...")`."""
    function = node.func
    called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
    if called not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None  # a name built at run time: the TYPE_CHECKING block states it for readers
    name = first.value
    if name.startswith("."):
        package = [kw.value for kw in node.keywords if kw.arg == "package"] or node.args[1:2]
        if not (package and isinstance(package[0], ast.Constant) and isinstance(package[0].value, str)):
            return None
        name = importlib.util.resolve_name(name, package[0].value)
    return name


def imports_of(package: Path) -> list[Import]:
    """Every import in `package` that reaches another unit of it, in path and line order."""
    root, units = package.name, units_on_disk(package)

    def unit_of_name(name: str) -> str | None:
        parts = name.split(".")
        if parts[0] != root:
            return None
        return parts[1] if len(parts) > 1 else "__init__"

    found = []
    for path in sorted(package.rglob("*.py")):
        source_text = path.read_text(encoding="utf-8")
        tree = ast.parse(source_text, filename=str(path))
        relative, current = path.relative_to(package), _module_name(package, path)
        source, is_package = _unit_of(relative), path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [unit_of_name(alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = _absolute(node.module, node.level, current, is_package)
                if module == root:  # from gandiag import x: the unit x, or a name of __init__
                    targets = [alias.name if alias.name in units else "__init__" for alias in node.names]
                else:
                    targets = [unit_of_name(module)]
            elif isinstance(node, ast.Call):
                name = _literal_import_call(node)
                targets = [unit_of_name(name)] if name else []
            targets = list(dict.fromkeys(t for t in targets if t is not None and t != source))
            if not targets:
                continue
            text = " ".join((ast.get_source_segment(source_text, node) or "").split())
            for target in targets:
                found.append(Import(f"{root}/{relative.as_posix()}", node.lineno, text, source, target))
    return sorted(found, key=lambda i: (i.path, i.line, i.target))


# ---------------------------------------------------------------- the checks


def check_layers(package: Path, layers: list[list[str]]) -> list[Violation]:
    """Every way `package` breaks the layer order `layers` (bottom first)."""
    root, units = package.name, units_on_disk(package)
    layer_of: dict[str, int] = {}
    violations = []
    for number, names in enumerate(layers, start=1):
        for name in names:
            if name in layer_of:
                violations.append(Violation("placement", (
                    f"README.md's Layout section places `{name}` on layers {layer_of[name]} and "
                    f"{number}. Fix: keep it on one layer.")))
            elif name not in units:
                violations.append(Violation("placement", (
                    f"README.md's Layout section places `{name}` on layer {number}, but {root}/ has "
                    f"no package or module of that name. Fix: correct the name, or remove it.")))
            layer_of.setdefault(name, number)
    for unit, is_module in sorted(units.items()):
        if unit not in layer_of:
            written = f"{root}/{unit}.py" if is_module else f"{root}/{unit}/"
            violations.append(Violation("placement", (
                f"{written} is on no layer of README.md's Layout section. Fix: add it to the "
                f"numbered list, on the lowest layer above everything it imports, or move its code "
                f"into a unit that is placed.")))

    imports = imports_of(package)
    for imp in imports:
        where = f"{imp.path}:{imp.line}: `{imp.text}`"
        if imp.target not in units:
            violations.append(Violation("direction", (
                f"{where}: {root}.{imp.target} is no package or module of {root}. Fix the import.")))
            continue
        if imp.source not in layer_of or imp.target not in layer_of:
            continue  # reported above as unplaced
        low, high = layer_of[imp.source], layer_of[imp.target]
        if high > low:
            violations.append(Violation("direction", (
                f"{where}: {imp.source} (layer {low}) imports {imp.target} (layer {high}), a higher "
                f"layer. Fix: move the import down (what {imp.source} needs from {imp.target} "
                f"belongs in {imp.source} or a lower layer, core if several units share it), or "
                f"move this code up to layer {high} or above.")))
        elif high == low and not (units[imp.source] and units[imp.target]):
            violations.append(Violation("direction", (
                f"{where}: {imp.source} imports {imp.target}, its sibling on layer {low}; siblings "
                f"never import each other. Fix: move what both need down (core, for the shared "
                f"currency), or move the code that joins them up and pass the piece in from there "
                f"(a callback, an argument).")))
    violations.extend(Violation("cycle", message) for message in _cycles(imports, set(units)))
    return violations


def _cycles(imports: list[Import], units: set[str]) -> list[str]:
    """One message per knot of units that import each other (a strongly connected
    component of the unit graph), naming one cycle through it and the imports it runs on."""
    edges: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for imp in imports:
        if imp.target in units:
            edges[imp.source][imp.target].append(imp)
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    knots: list[list[str]] = []

    def connect(unit: str) -> None:  # Tarjan's algorithm; the unit graph is small
        index[unit] = lowlink[unit] = len(index)
        stack.append(unit)
        for target in sorted(edges[unit]):
            if target not in index:
                connect(target)
                lowlink[unit] = min(lowlink[unit], lowlink[target])
            elif target in stack:
                lowlink[unit] = min(lowlink[unit], index[target])
        if lowlink[unit] == index[unit]:
            knot = []
            while True:
                member = stack.pop()
                knot.append(member)
                if member == unit:
                    break
            if len(knot) > 1:
                knots.append(sorted(knot))

    for unit in sorted(units):
        if unit not in index:
            connect(unit)
    messages = []
    for knot in sorted(knots):
        cycle = _shortest_cycle(knot[0], set(knot), edges)
        arrows = []
        for source, target in zip(cycle, cycle[1:]):
            first, *more = edges[source][target]
            also = f" (and {len(more)} more)" if more else ""
            arrows.append(f"    {source} -> {target}: {first.path}:{first.line}: `{first.text}`{also}")
        members = f" (units in this knot: {', '.join(knot)})" if len(knot) > len(cycle) - 1 else ""
        messages.append(
            f"import cycle between units: {' -> '.join(cycle)}{members}\n" + "\n".join(arrows)
            + "\n    Fix: the arrow that points up or sideways is the one to remove: move that "
              "import down, or the code that needs it up.")
    return messages


def _shortest_cycle(start: str, knot: set[str], edges: dict[str, dict[str, list[Import]]]) -> list[str]:
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        unit = queue.popleft()
        for target in sorted(edges[unit]):
            if target == start:
                path = [unit]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target in knot and target not in came_from:
                came_from[target] = unit
                queue.append(target)
    raise AssertionError(f"no cycle through {start} in {sorted(knot)}")  # a knot always has one


def oversized_modules(package: Path, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(path, lines) of every module of `package` over `limit` lines."""
    found = []
    for path in sorted(package.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append((f"{package.name}/{path.relative_to(package).as_posix()}", lines))
    return found


# ---------------------------------------------------------------- gandiag itself


def _layers() -> list[list[str]]:
    return layers_from_readme(README.read_text(encoding="utf-8"))


def _failure(violations: list[Violation], what: str) -> str:
    order = "; ".join(f"{number} {', '.join(names)}" for number, names in enumerate(_layers(), 1))
    return (f"{len(violations)} {what} (layer order from README.md's Layout section, bottom "
            f"first: {order}):\n" + "\n".join(v.message for v in violations))


def test_the_layout_section_places_every_unit_once():
    violations = [v for v in check_layers(PACKAGE, _layers()) if v.kind == "placement"]
    assert not violations, _failure(violations, "placement problems")


def test_no_import_cycle_between_units():
    violations = [v for v in check_layers(PACKAGE, _layers()) if v.kind == "cycle"]
    assert not violations, _failure(violations, "import cycles")


def test_every_import_points_down():
    violations = [v for v in check_layers(PACKAGE, _layers()) if v.kind == "direction"]
    assert not violations, _failure(violations, "imports that do not point down")


def test_no_module_over_400_lines():
    oversized = oversized_modules(PACKAGE)
    assert not oversized, (
        f"{len(oversized)} modules over {MAX_LINES} lines; split each into modules of one concept "
        f"each (a file that grows past {MAX_LINES} lines holds more than one):\n"
        + "\n".join(f"{path}: {lines} lines" for path, lines in oversized))


# ---------------------------------------------------------------- the checker checked

TOY_README = """\
# toypkg

## Layout

Bottom to top:

1. `core/`: records (imports nothing of toypkg).
2. `hooks/`, `store/`: two producers,
   siblings.
3. `train/`: the loop.
4. `cli.py`, `demo.py`, `__init__.py`, `ghost.py`: the top.

## Tests
"""

TOY_FILES = {
    "__init__.py": '"""toypkg."""\n',
    "cli.py": "from . import demo\n",  # top-level modules import each other: allowed
    "demo.py": "import toypkg.train.loop\nfrom toypkg import hooks\n",
    "core/__init__.py": "",
    "core/records.py": "RECORD = 1\n",
    "hooks/__init__.py": "from ..core import records\n",
    "store/__init__.py": "from toypkg.core.records import RECORD\n",
    "train/__init__.py": "",
    "train/loop.py": "from .. import core\n",
}
PLANTED = {  # appended to TOY_FILES: one violation each, each through another form of import
    "core/records.py": "def fit():\n    from ..train.loop import step  # upward; with train, a cycle\n",
    "hooks/__init__.py": ("from typing import TYPE_CHECKING\n"
                          "if TYPE_CHECKING:\n    from toypkg.store import Run\n"),
    "store/__init__.py": "import importlib\nimportlib.import_module('toypkg.train.loop')\n",
    "core/__init__.py": "import toypkg\n",  # the package root is on the top layer
}


def _toy_package(tmp_path: Path, planted: bool) -> Path:
    package = tmp_path / "toypkg"
    for name, text in TOY_FILES.items():
        if planted and name in PLANTED:
            text += PLANTED[name]
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    if planted:
        (package / "extra").mkdir()  # a unit the layout does not place
        (package / "extra/__init__.py").write_text("")
        (package / "train/huge.py").write_text("x = 1\n" * (MAX_LINES + 1))
    return package


def test_the_readme_parser_reads_layers_bottom_first_from_wrapped_items():
    assert layers_from_readme(TOY_README) == [["core"], ["hooks", "store"], ["train"],
                                              ["cli", "demo", "__init__", "ghost"]]
    with pytest.raises(AssertionError, match="no '## Layout' section"):
        layers_from_readme("# toypkg\n")


def test_the_checker_finds_nothing_in_a_package_that_keeps_the_order(tmp_path):
    package = _toy_package(tmp_path, planted=False)
    layers = layers_from_readme(TOY_README.replace(", `ghost.py`", ""))
    assert check_layers(package, layers) == []
    assert oversized_modules(package) == []


def test_the_checker_catches_each_planted_violation(tmp_path):
    package = _toy_package(tmp_path, planted=True)
    violations = check_layers(package, layers_from_readme(TOY_README))
    messages = {kind: [v.message for v in violations if v.kind == kind]
                for kind in ("placement", "cycle", "direction")}

    direction = messages["direction"]
    assert len(direction) == 4, "\n".join(direction)
    assert any(m.startswith("toypkg/core/records.py:3: `from ..train.loop import step`: core "
                            "(layer 1) imports train (layer 3), a higher layer. Fix: move the "
                            "import down") for m in direction), direction
    assert any(m.startswith("toypkg/hooks/__init__.py:4: `from toypkg.store import Run`: hooks "
                            "imports store, its sibling on layer 2") for m in direction), direction
    assert any(m.startswith("toypkg/store/__init__.py:3: `importlib.import_module('toypkg.train."
                            "loop')`: store (layer 2) imports train (layer 3)") for m in direction)
    assert any(m.startswith("toypkg/core/__init__.py:1: `import toypkg`: core (layer 1) imports "
                            "__init__ (layer 4)") for m in direction), direction

    cycles = messages["cycle"]
    assert len(cycles) == 1 and cycles[0].startswith("import cycle between units: "), cycles
    assert "core -> train: toypkg/core/records.py:3: `from ..train.loop import step`" in cycles[0]
    assert "train -> core: toypkg/train/loop.py:1: `from .. import core`" in cycles[0]
    assert "Fix:" in cycles[0]

    placement = messages["placement"]
    assert len(placement) == 2, placement
    assert any("`ghost` on layer 4, but toypkg/ has no package or module" in m for m in placement)
    assert any(m.startswith("toypkg/extra/ is on no layer") for m in placement), placement

    assert oversized_modules(package) == [("toypkg/train/huge.py", MAX_LINES + 1)]


def test_the_ground_floor_loads_no_other_gandiag_package():
    """Importing the currency (an Alert, Records, the Callback protocol) loads neither the
    trainer nor the hooks, the store or the detectors; checked in a fresh interpreter."""
    code = ("import sys, gandiag.core; "
            "print(sorted({m.split('.')[1] for m in sys.modules "
            "if m.startswith('gandiag.') and m.split('.')[1] != 'core'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"gandiag.core pulled in: {out.stdout.strip()}"
