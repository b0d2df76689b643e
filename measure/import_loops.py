"""Import loops between lookbook's modules (issue 39): who uses whom, and every cycle.

    python3 measure/import_loops.py [src/tui src/cli src/vision ...] [--edges]

Each file is a module (`src/tui/app/mod.rs` is `tui::app`, `src/cli/import.rs` is
`cli::import`); an edge A -> B means A names something of B (`use super::...`,
`use crate::...`, a `crate::`/`super::` path in the code, or in a parent a path through a
child's name). `mod` declarations and test modules are not edges. A re-export (`pub use
child::Item`, a module's facade) is seen through: a path to `parent::Item` is an edge to the
child that defines it, and the parent using `Item` itself is an edge parent -> child. A parent that uses its child's items while the child uses the parent's is a
loop. It prints, per folder given, the largest files and every strongly connected group of two
or more modules (a loop), or "no import loop"; `--edges` lists the edges too. Exit status 1
when a loop is found. Plain text parsing, no compiler: good enough for `use` lines and paths,
which is how this code base refers across modules.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
BIN_TOP = {"benchmarks", "cli", "http", "serve", "tui"}  # modules of the binary (main.rs)


def module_of(path):
    """(crate, module path) of a file under src/."""
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return ("lib" if rel == ["lib"] else "bin"), []
    return ("bin" if rel[0] in BIN_TOP else "lib"), rel


def expand(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (one `use` tree, no `as` aliases)."""
    tree = re.sub(r"\s+as\s+\w+", "", tree.strip())
    m = re.match(r"^(.*?)::\{(.*)\}$", tree, re.S)
    if not m:
        return [tree]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            out.extend(f"{prefix}::{q}" for q in expand(p.strip()))
    return out


def without_tests(text):
    """The file without its `#[cfg(test)]` modules (tests may use anything) and without
    re-exports (`pub use child::Item` is the module's facade, not a use of the child)."""
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)[0]
    text = re.sub(r"\bpub(?:\([a-z]+\))?\s+use\s+[^;]+;", "", text)
    # `pub(in crate::tui)` is a visibility, not a use.
    return re.sub(r"\bpub\(in\s+[\w:]+\)", "pub", text)


ITEM = re.compile(r"^(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|fn|const|static|type|trait|union)\s+(\w+)", re.M)


def defined(text):
    """The names of a file's top-level items (not its `impl` members, which are indented)."""
    return set(ITEM.findall(text))


def reexports(text):
    """The paths a file re-exports (`pub use ...;`), outside its tests."""
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    out = []
    for m in re.finditer(r"\bpub(?:\([a-z]+\))?\s+use\s+([^;]+);", text):
        out.extend(expand(m.group(1)))
    return [p.strip() for p in out if p.strip()]


def referenced(text):
    """Every `crate::`, `super::` or `self::` path the file names."""
    text = re.sub(r"//[^\n]*", "", without_tests(text))
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand(m.group(1)))
    paths.extend(m.group(0) for m in re.finditer(r"\b(?:crate|super|self)(?:::\w+)+", text))
    return [p.strip() for p in paths if p.strip().startswith(("crate::", "super::", "self::"))]


def resolve(path, here, modules):
    """The module (longest known prefix) a path points into, from module `here`, and the rest
    of the path after it."""
    crate, mod = here
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = [], parts[1:]
    else:
        base = list(mod)
        rest = parts
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    full = base + [p for p in rest if p != "{" and p]
    for n in range(len(full), -1, -1):
        if (crate, tuple(full[:n])) in modules:
            return (crate, tuple(full[:n])), full[n:]
    return None, []


def through(target, rest, facades):
    """Where a path really points: through each facade to the module defining its item."""
    for _ in range(8):  # facade chains are short; this bounds a re-export loop
        nxt = facades.get(target, {}).get(rest[0]) if rest else None
        if nxt is None or nxt == target:
            break
        target = nxt
    return target


def sccs(nodes, edges):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    show_edges = "--edges" in sys.argv
    folders = args or ["src/tui", "src/cli", "src/vision"]
    files = []
    for dirpath, _, names in os.walk(SRC):
        files.extend(os.path.join(dirpath, n) for n in names if n.endswith(".rs"))
    modules = {}
    for f in files:
        c, m = module_of(f)
        modules[(c, tuple(m))] = f
    texts = {k: open(f).read() for k, f in modules.items()}
    # Facades: for each module, the items it re-exports and the module each comes from.
    facades = {}
    for _ in range(3):  # a glob of a facade needs that facade first
        for key, text in texts.items():
            names = facades.setdefault(key, {})
            for p in reexports(text):
                target, rest = resolve(p, key, modules)
                if target is None or target == key:
                    continue
                if rest == ["*"]:
                    for n in defined(texts[target]):
                        names[n] = target
                    for n, t in facades.get(target, {}).items():
                        names[n] = t
                elif len(rest) == 1:
                    names[rest[0]] = through(target, rest, facades)
    edges = {}
    for key, f in modules.items():
        text = without_tests(texts[key])
        code = re.sub(r"//[^\n]*", "", text)
        # The module using an item it re-exports (`App { list: ListPane }` beside `pub use list::ListPane`).
        for n, t in facades.get(key, {}).items():
            if t != key and re.search(rf"\b{n}\b", code):
                edges.setdefault(key, set()).add(t)
        # A path that starts with a child module's name (`feed::recommend` in cli/mod.rs).
        children = {k[1][-1] for k in modules if k[0] == key[0] and len(k[1]) == len(key[1]) + 1 and k[1][:-1] == key[1]}
        for c in children:
            if re.search(rf"(?<![\w:]){c}::", re.sub(r"\b(?:pub\s+)?mod\s+\w+;", "", code)):
                edges.setdefault(key, set()).add((key[0], key[1] + (c,)))
        for p in referenced(text):
            target, rest = resolve(p, key, modules)
            target = target and through(target, rest, facades)
            if target and target != key:
                edges.setdefault(key, set()).add(target)
    found = False
    for folder in folders:
        folder = folder.rstrip("/")
        inside = {k for k, f in modules.items() if os.path.relpath(f, ROOT).startswith(folder + "/")}
        sizes = sorted(((sum(1 for _ in open(modules[k])), os.path.relpath(modules[k], ROOT)) for k in inside),
                       reverse=True)
        print(f"{folder}: {len(inside)} files; largest: " + ", ".join(f"{p} {n}" for n, p in sizes[:5]))
        sub = {k: {w for w in edges.get(k, ()) if w in inside} for k in inside}
        if show_edges:
            for k in sorted(sub):
                for w in sorted(sub[k]):
                    print(f"  {'::'.join(k[1])} -> {'::'.join(w[1])}")
        loops = [c for c in sccs(sorted(inside), sub) if len(c) > 1]
        if loops:
            found = True
            for c in loops:
                print("  loop: " + " <-> ".join(sorted("::".join(k[1]) for k in c)))
        else:
            print("  no import loop")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
