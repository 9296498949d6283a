"""The architecture's rules, read from the source: one import direction between the rooms, a
torch-free runtime, and nothing but a study that imports a study."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOMS = ("common", "runtime", "train", "export", "benchmarks")
# what each room may import of the others (the README's Architecture section)
ALLOWED = {"common": set(), "runtime": {"common"}, "train": {"common", "runtime"},
           "export": {"common", "runtime", "train"}, "benchmarks": {"common", "runtime", "train", "export"}}


def imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)  # from asl_edge.benchmarks import studies


def test_rooms_import_in_one_direction_and_the_runtime_never_imports_torch():
    bad = []
    for room in ROOMS:
        for f in (REPO / room).rglob("*.py"):
            for mod in imports(f):
                parts = mod.split(".")
                if parts[0] == "asl_edge" and len(parts) > 1 and parts[1] in ROOMS and parts[1] != room \
                        and parts[1] not in ALLOWED[room]:
                    bad.append(f"{f.relative_to(REPO)} imports {mod}")
                if room in ("common", "runtime") and parts[0] in ("torch", "torchvision"):
                    bad.append(f"{f.relative_to(REPO)} imports {mod}")
    assert not bad, bad


def test_nothing_but_a_study_imports_a_study():
    """Studies are decision records: the product, the benchmark tools and the tests never import one
    (a test runs a record's command, as a reader would)."""
    files = [f for room in ("common", "runtime", "train", "export", "tests") for f in (REPO / room).rglob("*.py")]
    files += list((REPO / "benchmarks").glob("*.py"))
    bad = [f"{f.relative_to(REPO)} imports {mod}" for f in files
           for mod in imports(f) if mod.startswith("asl_edge.benchmarks.studies")]
    assert not bad, bad


def test_no_file_is_over_350_lines():
    """The project's size rule: a file that grows past ~350 lines is split by topic."""
    folders = ("common", "runtime", "train", "export", "benchmarks", "tests", "scripts")
    long = [f"{f.relative_to(REPO)}: {n} lines" for folder in folders for f in sorted((REPO / folder).rglob("*.py"))
            if (n := len(f.read_text().splitlines())) > 350]
    assert not long, long


def module_graph() -> dict:
    """asl_edge module -> the asl_edge modules it imports, at the top or inside a function."""
    files = {f"asl_edge.{'.'.join(f.relative_to(REPO).with_suffix('').parts)}".removesuffix(".__init__"): f
             for room in ROOMS for f in (REPO / room).rglob("*.py")}
    graph = {}
    for name, f in files.items():
        package = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{up}.{base}" if base else up
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def test_no_import_circle_even_inside_functions():
    graph, state, circles = module_graph(), {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, circles
