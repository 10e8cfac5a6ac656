#!/usr/bin/env python3
"""Checks that each layer of a crate imports only the layers listed above it.

The layers are read from a list (by default `layers.txt` next to this script), top to
bottom, one a line: `name: prefix prefix ...`, where a prefix is a module path relative to
the crate root (`store`, `store::keys`). A module belongs to the layer of its longest
matching prefix. A layer may use the layers listed above it and itself; a reference to a
layer listed below it is a violation, a cycle between layers is an error, and a module that
no prefix covers is "unassigned", so that the list stays complete.

References found: `use` trees (`use crate::{a::{b, c}, d};`, `pub(crate) use` re-exports,
paths relative to a child module), and `crate::`, `$crate::`, `self::` and `super::` paths
in code. Comments, doc comments, string and character literals are skipped. A path through
a name that the crate root re-exports (`crate::Config`) counts as a reference to the module
the root takes it from. The crate root (`lib.rs`), the macro glue (`__private.rs`) and the
binaries (`bin/`) are the index and are neither checked nor counted as targets.

`--no-layers` makes every top-level module its own node and reports only cycles between
them; `--graph` prints the edges between nodes with their counts.

Exit status: 0 when clean (one summary line), 1 on a violation, a cycle or an unassigned
file, 2 when the layer list or the arguments are bad.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import defaultdict
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

Module = Tuple[str, ...]

# Modules that are the crate's index or glue: lib.rs, and the module the macros expand to.
EXEMPT: Set[Module] = {(), ("__private",)}
# Top-level folders of the source directory that hold other crates (binaries).
SKIPPED_DIRS = {"bin"}


class Token(NamedTuple):
    kind: str  # "id", "::" or "p" (one punctuation character)
    text: str
    line: int


class Ref(NamedTuple):
    line: int
    written: str  # the path as the source spells it, flattened out of its use tree
    target: Module  # the module the path leads into
    in_test: bool  # inside a `#[cfg(test)] mod`


class Layer(NamedTuple):
    name: str
    prefixes: Tuple[Module, ...]
    line: int


class ListError(Exception):
    """The layer list cannot be read; the message names the file and line."""


# --- tokens -------------------------------------------------------------------------------

_RAW_STRING = re.compile(r'(?:b|c)?r(#*)"')
_IDENT_START = re.compile(r"[A-Za-z_]")
_IDENT = re.compile(r"[A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_]*")


def _string_end(src: str, i: int) -> int:
    """Index just past the `"` that closes the string whose body starts at `i`."""
    n = len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i + 1
        else:
            i += 1
    return n


def tokens_of(src: str) -> List[Token]:
    """Identifiers, `::` and punctuation of Rust source, without comments or literals."""
    toks: List[Token] = []
    i, n, line = 0, len(src), 1
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c.isspace():
            i += 1
            continue
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            line += src.count("\n", i, j)
            i = j
            continue
        m = _RAW_STRING.match(src, i) if c in "bcr" else None
        if m:
            close = '"' + m.group(1)
            j = src.find(close, m.end())
            j = n if j < 0 else j + len(close)
            line += src.count("\n", i, j)
            i = j
            continue
        if c == '"' or (c in "bc" and src.startswith('"', i + 1)):
            start = i + 1 if c == '"' else i + 2
            j = _string_end(src, start)
            line += src.count("\n", i, j)
            i = j
            continue
        if c == "'" or (c == "b" and src.startswith("'", i + 1)):
            q = i if c == "'" else i + 1
            if src.startswith("\\", q + 1):
                j = src.find("'", q + 3)
                i = n if j < 0 else j + 1
            elif q + 2 < n and src[q + 2] == "'" and src[q + 1] != "\n":
                i = q + 3
            else:  # a lifetime or a loop label
                i = _IDENT.match(src, q + 1).end()
            continue
        if c == "r" and src.startswith("r#", i) and _IDENT_START.match(src, i + 2):
            j = _IDENT.match(src, i + 2).end()
            toks.append(Token("id", src[i + 2 : j], line))
            i = j
            continue
        if _IDENT_START.match(c):
            j = _IDENT.match(src, i).end()
            toks.append(Token("id", src[i:j], line))
            i = j
            continue
        if c == "$" and _IDENT_START.match(src, i + 1):
            j = _IDENT.match(src, i + 1).end()
            toks.append(Token("id", src[i:j], line))
            i = j
            continue
        if c.isdigit():
            i = _NUMBER.match(src, i).end()
            continue
        if src.startswith("::", i):
            toks.append(Token("::", "::", line))
            i += 2
            continue
        toks.append(Token("p", c, line))
        i += 1
    return toks


# --- use trees ----------------------------------------------------------------------------


class UseLeaf(NamedTuple):
    segments: Tuple[str, ...]  # "::" first for a path from the extern prelude; "*" last for a glob
    line: int  # line of the leaf's last segment
    alias: Optional[str]


_END = Token("p", "", 0)


def _at(toks: List[Token], i: int) -> Token:
    return toks[i] if i < len(toks) else _END


def _use_tree(toks: List[Token], i: int, prefix: Tuple[str, ...], out: List[UseLeaf]) -> int:
    """Reads one use tree at `i` into `out`; returns the index after it."""
    segs = list(prefix)
    if _at(toks, i).kind == "::":
        if not segs:
            segs.append("::")
        i += 1
    while True:
        t = _at(toks, i)
        if t.kind == "id" and t.text != "as":
            segs.append(t.text)
            i += 1
            if _at(toks, i).kind == "::":
                i += 1
                continue
            alias = None
            if _at(toks, i).text == "as" and _at(toks, i + 1).kind in ("id", "p"):
                alias = _at(toks, i + 1).text
                i += 2
            if len(segs) > 1 and segs[-1] == "self":
                segs.pop()
            out.append(UseLeaf(tuple(segs), t.line, alias))
            return i
        if t.text == "*":
            out.append(UseLeaf(tuple(segs) + ("*",), t.line, None))
            return i + 1
        if t.text == "{":
            i += 1
            while _at(toks, i).text not in ("}", ""):
                before = i
                i = _use_tree(toks, i, tuple(segs), out)
                if _at(toks, i).text == ",":
                    i += 1
                elif i == before or _at(toks, i).text != "}":
                    return i
            return i + 1
        return i


def use_leaves(src: str) -> List[UseLeaf]:
    """Every leaf of every `use` item of `src` (for tests and the root's re-exports)."""
    toks = tokens_of(src)
    out: List[UseLeaf] = []
    for i, t in enumerate(toks):
        if t.kind == "id" and t.text == "use" and _at(toks, i - 1).kind != "::":
            _use_tree(toks, i + 1, (), out)
    return out


# --- references ---------------------------------------------------------------------------


class Crate:
    """The modules of a crate, known from its files, and the names its root re-exports."""

    def __init__(self, modules: Set[Module]):
        self.modules = modules
        self.root_names: Dict[str, Module] = {}

    def module_of(self, path: Module) -> Module:
        """The deepest module (file) that `path` leads into."""
        for k in range(len(path), -1, -1):
            if path[:k] in self.modules:
                return path[:k]
        return ()

    def resolve(self, segs: Tuple[str, ...], cur: Module) -> Optional[Module]:
        """The module a path written in module `cur` leads into, or None when it leaves
        the crate (a dependency, std, a local name)."""
        if not segs or segs[0] == "::":
            return None
        first = segs[0]
        if first in ("crate", "$crate"):
            path = segs[1:]
        elif first == "self":
            path = cur + segs[1:]
        elif first == "super":
            base, k = cur, 0
            while k < len(segs) and segs[k] == "super":
                if not base:
                    return None
                base, k = base[:-1], k + 1
            path = base + segs[k:]
        elif cur + (first,) in self.modules:
            path = cur + segs
        else:
            return None
        path = tuple(s for s in path if s != "*")
        target = self.module_of(path)
        if target == () and path and path[0] in self.root_names:
            target = self.module_of(self.root_names[path[0]] + path[1:])
        return target


def _written(segs: Tuple[str, ...]) -> str:
    return "::".join(segs).replace("::::", "::")


def _is_test_mod(toks: List[Token], i: int) -> bool:
    """Whether the `mod` at `i` carries `#[cfg(test)]` among its attributes."""
    j = i - 1
    if _at(toks, j).text == ")" and _at(toks, j - 2).text == "(" and _at(toks, j - 3).text == "pub":
        j -= 4  # pub(crate), pub(super)
    elif _at(toks, j).text == "pub":
        j -= 1
    while j > 0 and toks[j].text == "]":
        k, depth = j, 0
        while k >= 0:
            if toks[k].text == "]":
                depth += 1
            elif toks[k].text == "[":
                depth -= 1
                if depth == 0:
                    break
            k -= 1
        if k < 1 or toks[k - 1].text != "#":
            return False
        if [t.text for t in toks[k + 1 : j]] == ["cfg", "(", "test", ")"]:
            return True
        j = k - 2
    return False


def refs_of(src: str, module: Module, crate: Crate) -> List[Ref]:
    """References from the file of `module` to modules of the crate."""
    toks = tokens_of(src)
    refs: List[Ref] = []
    inline: List[Tuple[str, int, bool]] = []  # inline `mod name {` blocks: name, depth outside, test
    depth = 0
    i = 0
    while i < len(toks):
        t = toks[i]
        prev = _at(toks, i - 1) if i else _END
        cur = module + tuple(name for name, _, _ in inline)
        in_test = any(test for _, _, test in inline)
        if t.text == "{":
            depth += 1
        elif t.text == "}":
            depth -= 1
            if inline and inline[-1][1] == depth:
                inline.pop()
        elif (
            t.kind == "id"
            and t.text == "mod"
            and _at(toks, i + 1).kind == "id"
            and _at(toks, i + 2).text == "{"
        ):
            inline.append((toks[i + 1].text, depth, _is_test_mod(toks, i)))
            depth += 1
            i += 3
            continue
        elif t.kind == "id" and t.text == "use" and prev.kind != "::":
            leaves: List[UseLeaf] = []
            i = _use_tree(toks, i + 1, (), leaves)
            for leaf in leaves:
                target = crate.resolve(leaf.segments, cur)
                if target is not None:
                    refs.append(Ref(leaf.line, _written(leaf.segments), target, in_test))
            continue
        elif (
            t.kind == "id"
            and prev.kind != "::"
            and prev.text != "."
            and _at(toks, i + 1).kind == "::"
            and _at(toks, i + 2).kind == "id"
            and not (prev.text == "in" and _at(toks, i - 2).text == "(")  # pub(in crate::x)
            and (t.text in ("crate", "$crate", "self", "super") or cur + (t.text,) in crate.modules)
        ):
            segs = [t.text]
            j = i + 1
            while _at(toks, j).kind == "::" and _at(toks, j + 1).kind == "id":
                segs.append(toks[j + 1].text)
                j += 2
            target = crate.resolve(tuple(segs), cur)
            if target is not None:
                refs.append(Ref(t.line, "::".join(segs), target, in_test))
            i = j
            continue
        i += 1
    return refs


# --- files and layers ---------------------------------------------------------------------


def module_of_file(rel: str) -> Module:
    """`foo/mod.rs` and `foo.rs` are `foo`, `foo/bar.rs` is `foo::bar`, `lib.rs` the root."""
    parts = rel.replace(os.sep, "/").split("/")
    last = parts[-1][: -len(".rs")]
    if last == "mod":
        return tuple(parts[:-1])
    if len(parts) == 1 and last in ("lib", "main"):
        return ()
    return tuple(parts[:-1]) + (last,)


def rust_files(src_dir: str) -> List[str]:
    """The crate's .rs files under `src_dir`, relative to it, without the binaries."""
    found = []
    for root, dirs, files in os.walk(src_dir):
        rel_root = os.path.relpath(root, src_dir)
        if rel_root == ".":
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".rs"):
                found.append(os.path.normpath(os.path.join(rel_root, name)))
    return found


def read_layers(path: str) -> List[Layer]:
    """The layers of the list at `path`, top first."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ListError(f"{path}: cannot read the layer list: {e.strerror}") from e
    layers: List[Layer] = []
    owner: Dict[Module, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, colon, rest = line.partition(":")
        name = name.strip()
        if not colon or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ListError(f"{path}:{number}: expected `layer: prefix ...`, found {raw.strip()!r}")
        if any(layer.name == name for layer in layers):
            raise ListError(f"{path}:{number}: layer {name!r} is listed twice")
        prefixes = []
        for word in rest.split():
            prefix = tuple(word.replace("/", "::").split("::"))
            if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) for s in prefix):
                raise ListError(f"{path}:{number}: {word!r} is not a module path")
            if prefix in owner:
                raise ListError(f"{path}:{number}: {word!r} is already in layer {owner[prefix]!r}")
            owner[prefix] = name
            prefixes.append(prefix)
        if not prefixes:
            raise ListError(f"{path}:{number}: layer {name!r} has no module prefix")
        layers.append(Layer(name, tuple(prefixes), number))
    if not layers:
        raise ListError(f"{path}: the layer list names no layer")
    return layers


def layer_of(module: Module, layers: List[Layer]) -> Optional[str]:
    """The layer whose prefix matches most of `module`, or None."""
    best, best_len = None, -1
    for layer in layers:
        for prefix in layer.prefixes:
            if len(prefix) > best_len and module[: len(prefix)] == prefix:
                best, best_len = layer.name, len(prefix)
    return best


def cycles_of(nodes: List[str], edges: Dict[Tuple[str, str], list]) -> List[List[str]]:
    """Strongly connected components with more than one node (Tarjan), in `nodes` order."""
    succ: Dict[str, List[str]] = defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v], key=nodes.index):
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
                found.append(sorted(component, key=nodes.index))

    for v in nodes:
        if v not in index:
            visit(v)
    return sorted(found, key=lambda c: nodes.index(c[0]))


# --- the check ----------------------------------------------------------------------------


def _counted(refs: List[Tuple[str, Ref]]) -> str:
    """`N references in M files (K in tests)`."""
    files = len({shown for shown, _ in refs})
    tests = sum(1 for _, ref in refs if ref.in_test)
    text = f"{len(refs)} reference{'s' if len(refs) != 1 else ''} in {files} file{'s' if files != 1 else ''}"
    return text + (f" ({tests} in tests)" if tests else "")


def main(argv: Optional[List[str]] = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", nargs="?", default="stacktrace/src", help="the crate's source directory")
    parser.add_argument("--layers", default=os.path.join(here, "layers.txt"), help="the layer list")
    parser.add_argument("--graph", action="store_true", help="print the edges between layers (or modules) with counts")
    parser.add_argument(
        "--no-layers",
        action="store_true",
        help="make every top-level module its own node; report only cycles between them",
    )
    args = parser.parse_args(argv)

    if not os.path.isdir(args.src):
        print(f"check-layers: {args.src}: not a directory", file=sys.stderr)
        return 2
    layers: List[Layer] = []
    if not args.no_layers:
        try:
            layers = read_layers(args.layers)
        except ListError as e:
            print(f"check-layers: {e}", file=sys.stderr)
            return 2

    files = rust_files(args.src)
    modules = {module_of_file(rel): rel for rel in files}
    crate = Crate(set(modules))
    sources: Dict[str, str] = {}
    for rel in files:
        path = os.path.join(args.src, rel)
        try:
            with open(path, encoding="utf-8") as f:
                sources[rel] = f.read()
        except (OSError, UnicodeDecodeError) as e:
            print(f"check-layers: {path}: cannot read: {e}", file=sys.stderr)
            return 2
    if () in modules:
        for leaf in use_leaves(sources[modules[()]]):
            if leaf.segments[-1] == "*":
                continue
            name = leaf.alias or leaf.segments[-1]
            segs = leaf.segments
            if segs[0] not in ("crate", "self", "super", "::") and (segs[0],) in crate.modules:
                crate.root_names[name] = segs
            elif segs[0] in ("crate", "self"):
                crate.root_names[name] = segs[1:]

    def node_of(module: Module) -> Optional[str]:
        if module in EXEMPT:
            return None
        if args.no_layers:
            return module[0]
        return layer_of(module, layers)

    problems: List[Tuple[str, int, str]] = []  # file, line, message
    unassigned = 0
    edges: Dict[Tuple[str, str], List[Tuple[str, Ref]]] = defaultdict(list)
    references = 0
    for rel in files:
        module = module_of_file(rel)
        if module in EXEMPT:
            continue
        shown = os.path.join(args.src, rel)
        source = node_of(module)
        if source is None:
            where, listed = "::".join(module), os.path.relpath(args.layers)
            problems.append((shown, 0, f"{shown}: unassigned (module {where} matches no prefix in {listed})"))
            unassigned += 1
            continue
        for ref in refs_of(sources[rel], module, crate):
            target = node_of(ref.target)
            if target is None or target == source:
                continue
            references += 1
            edges[(source, target)].append((shown, ref))

    if args.no_layers:
        nodes = sorted({module[0] for module in modules if module not in EXEMPT})
    else:
        nodes = [layer.name for layer in layers]
    order = {name: k for k, name in enumerate(nodes)}
    ordered_edges = sorted(edges.items(), key=lambda e: (order[e[0][0]], order[e[0][1]]))

    violations = 0
    if not args.no_layers:
        for (a, b), refs in ordered_edges:
            if order[b] > order[a]:
                for shown, ref in refs:
                    problems.append((shown, ref.line, f"{shown}:{ref.line}: {a} imports {b} ({ref.written})"))
                    violations += 1

    cycles = cycles_of(nodes, edges)
    cycle_lines: List[str] = []
    for component in cycles:
        cycle_lines.append(f"cycle between {', '.join(component)}:")
        for (a, b), refs in ordered_edges:
            if a in component and b in component:
                shown, ref = refs[0]
                both = " (both ways)" if (b, a) in edges else ""
                first = f"first {shown}:{ref.line} ({ref.written})"
                cycle_lines.append(f"  {a} -> {b}: {_counted(refs)}{both}, {first}")

    if args.graph:
        print(f"edges between {'modules' if args.no_layers else 'layers'}:")
        for (a, b), refs in ordered_edges:
            mark = ", imports a layer below" if not args.no_layers and order[b] > order[a] else ""
            print(f"  {a} -> {b}: {_counted(refs)}{mark}")

    for _, _, message in sorted(problems):
        print(message)
    for line in cycle_lines:
        print(line)

    kind = "modules" if args.no_layers else "layers"
    counted = f"{len(files)} files, {len(nodes)} {kind}, {references} references between {kind}"
    if problems or cycles:
        found = f"{violations} violations, {len(cycles)} cycles, {unassigned} unassigned files"
        print(f"check-layers: {counted}: {found}")
        return 1
    print(f"check-layers: {counted}: no violations, no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
