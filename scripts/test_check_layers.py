#!/usr/bin/env python3
"""Tests of check-layers.py on small crates written to a temporary directory.

Run: python3 scripts/test_check_layers.py
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
from typing import Dict, List, Tuple

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-layers.py")


def load_script():
    spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_layers = load_script()

# Two layers: `top` may not use `bottom`; `bottom` may use `top`.
TWO_LAYERS = "# a comment\ntop: top\nbottom: bottom  # another\n"


class Tree:
    """A crate's source directory and a layer list, in a temporary directory."""

    def __init__(self, files: Dict[str, str], layers: str = TWO_LAYERS):
        self.dir = tempfile.TemporaryDirectory()
        self.src = os.path.join(self.dir.name, "src")
        self.layers = os.path.join(self.dir.name, "layers.txt")
        for rel, text in files.items():
            path = os.path.join(self.src, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(textwrap.dedent(text).lstrip("\n"))
        with open(self.layers, "w", encoding="utf-8") as f:
            f.write(layers)

    def path(self, rel: str) -> str:
        return os.path.join(self.src, rel)

    def run(self, *flags: str) -> Tuple[int, List[str]]:
        done = subprocess.run(
            [sys.executable, SCRIPT, "--layers", self.layers, *flags, self.src],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).splitlines()

    def __enter__(self) -> "Tree":
        return self

    def __exit__(self, *exc) -> None:
        self.dir.cleanup()


def violations(lines: List[str]) -> List[str]:
    return [line for line in lines if " imports " in line]


CLEAN = {
    "lib.rs": """
        mod bottom;
        mod top;
        pub use top::Thing;
        """,
    "top/mod.rs": """
        mod a;
        pub use a::Thing;
        """,
    "top/a.rs": """
        pub struct Thing;
        """,
    "bottom.rs": """
        use crate::top::a::Thing;
        pub fn make() -> crate::Thing { Thing }
        """,
    "__private.rs": "pub use crate::bottom::make;\n",
    "bin/tool.rs": "use stacktrace::bottom::make;\n",
}


class CleanTree(unittest.TestCase):
    def test_a_clean_tree_passes_with_one_summary_line(self):
        with Tree(CLEAN) as tree:
            code, lines = tree.run()
        self.assertEqual(code, 0, lines)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("no violations, no cycles", lines[0])

    def test_the_graph_counts_the_references_of_a_clean_tree(self):
        # bottom.rs names `top` twice: through the use and through the root's re-export.
        with Tree(CLEAN) as tree:
            code, lines = tree.run("--graph")
        self.assertEqual(code, 0, lines)
        self.assertIn("  bottom -> top: 2 references in 1 file", lines)


class Violations(unittest.TestCase):
    def test_a_layer_importing_one_listed_below_fails_naming_file_and_line(self):
        files = dict(CLEAN)
        files["top/a.rs"] = """
            pub struct Thing;

            pub fn f() { crate::bottom::make(); }
            """
        with Tree(files) as tree:
            code, lines = tree.run()
            shown = tree.path("top/a.rs")
        self.assertEqual(code, 1, lines)
        self.assertEqual(violations(lines), [f"{shown}:3: top imports bottom (crate::bottom::make)"])
        self.assertIn("1 violations", lines[-1])

    def test_super_climbing_out_of_a_folder_counts_and_within_it_does_not(self):
        files = dict(CLEAN)
        files["top/b.rs"] = """
            use super::a::Thing;
            use super::super::bottom::make;
            mod tests {
                use super::*;
                use super::super::a::Thing as Again;
                fn t() { super::super::super::bottom::make(); }
            }
            """
        with Tree(files) as tree:
            code, lines = tree.run()
            shown = tree.path("top/b.rs")
        self.assertEqual(code, 1, lines)
        self.assertEqual(
            violations(lines),
            [
                f"{shown}:2: top imports bottom (super::super::bottom::make)",
                f"{shown}:6: top imports bottom (super::super::super::bottom::make)",
            ],
        )

    def test_re_exports_and_names_from_the_root_count(self):
        files = dict(CLEAN)
        files["lib.rs"] = CLEAN["lib.rs"] + "pub use bottom::make as build;\n"
        files["top/mod.rs"] = """
            mod a;
            pub use a::Thing;
            pub(crate) use crate::bottom::make;
            pub(in crate::top) fn g() { crate::build(); }
            """
        with Tree(files) as tree:
            code, lines = tree.run()
            shown = tree.path("top/mod.rs")
        self.assertEqual(code, 1, lines)
        self.assertEqual(
            violations(lines),
            [
                f"{shown}:3: top imports bottom (crate::bottom::make)",
                f"{shown}:4: top imports bottom (crate::build)",
            ],
        )

    def test_the_longest_prefix_decides_the_layer(self):
        files = {
            "lib.rs": "mod store;\n",
            "store/mod.rs": "mod db;\nmod keys;\n",
            # `pub(in path)` names an ancestor, not an import.
            "store/keys.rs": "use crate::store::db::Db;\npub(in crate::store) struct Key;\n",
            "store/db.rs": "use super::keys::Key;\n",
        }
        with Tree(files, layers="keys: store::keys\nstore: store\n") as tree:
            code, lines = tree.run()
            shown = tree.path("store/keys.rs")
        self.assertEqual(code, 1, lines)
        self.assertEqual(violations(lines), [f"{shown}:1: keys imports store (crate::store::db::Db)"])

    def test_an_unassigned_file_fails(self):
        files = dict(CLEAN)
        files["stray.rs"] = "use crate::top::Thing;\n"
        with Tree(files) as tree:
            code, lines = tree.run()
            shown = tree.path("stray.rs")
        self.assertEqual(code, 1, lines)
        listed = os.path.relpath(tree.layers)
        self.assertIn(f"{shown}: unassigned (module stray matches no prefix in {listed})", lines)
        self.assertIn("1 unassigned files", lines[-1])
        # The index and the glue are not unassigned.
        self.assertFalse([line for line in lines if "lib.rs" in line or "__private" in line or "bin" in line])

    def test_a_bad_layer_list_names_its_line(self):
        with Tree(CLEAN, layers="top: top\nbottom top\n") as tree:
            code, lines = tree.run()
            listed = tree.layers
        self.assertEqual(code, 2, lines)
        self.assertIn(f"{listed}:2:", lines[0])


CYCLE = {
    "lib.rs": "mod a;\nmod b;\nmod c;\n",
    "a.rs": "use crate::b::B;\npub struct A;\n",
    "b/mod.rs": "mod inner;\n",
    "b/inner.rs": "pub struct B;\n\nfn f() -> crate::a::A { crate::a::A }\n",
    "c.rs": "use crate::a::A;\n",
}


class Cycles(unittest.TestCase):
    def test_a_cycle_between_top_level_modules_is_reported(self):
        with Tree(CYCLE) as tree:
            code, lines = tree.run("--no-layers")
            a, inner = tree.path("a.rs"), tree.path("b/inner.rs")
        self.assertEqual(code, 1, lines)
        start = lines.index("cycle between a, b:")
        self.assertEqual(
            lines[start + 1 : start + 3],
            [
                f"  a -> b: 1 reference in 1 file (both ways), first {a}:1 (crate::b::B)",
                f"  b -> a: 2 references in 1 file (both ways), first {inner}:3 (crate::a::A)",
            ],
        )
        self.assertIn("1 cycles", lines[-1])

    def test_the_graph_lists_every_edge_and_the_cycle_only_its_own(self):
        with Tree(CYCLE) as tree:
            code, lines = tree.run("--no-layers", "--graph")
        self.assertEqual(code, 1, lines)
        self.assertIn("  c -> a: 1 reference in 1 file", lines)
        self.assertEqual([line for line in lines if line.startswith("cycle")], ["cycle between a, b:"])
        self.assertFalse([line for line in lines if line.startswith("  c -> ") and "first" in line])

    def test_a_cycle_between_layers_is_reported(self):
        with Tree(CYCLE, layers="a: a\nb: b\nc: c\n") as tree:
            code, lines = tree.run()
        self.assertEqual(code, 1, lines)
        self.assertIn("cycle between a, b:", lines)
        self.assertEqual(len(violations(lines)), 1, lines)

    def test_modules_without_a_cycle_pass_in_module_mode(self):
        files = dict(CYCLE)
        files["b/inner.rs"] = "pub struct B;\n"
        with Tree(files) as tree:
            code, lines = tree.run("--no-layers")
        self.assertEqual(code, 0, lines)
        self.assertIn("no violations, no cycles", lines[-1])


class Parsing(unittest.TestCase):
    def test_nested_multi_line_use_trees_are_flattened(self):
        leaves = check_layers.use_leaves(
            "use crate::{\n    a::{b, c},\n    d,\n};\npub(crate) use e::{self as f, g::*};\n"
        )
        self.assertEqual(
            [(leaf.segments, leaf.line, leaf.alias) for leaf in leaves],
            [
                (("crate", "a", "b"), 2, None),
                (("crate", "a", "c"), 2, None),
                (("crate", "d"), 3, None),
                (("e",), 5, "f"),
                (("e", "g", "*"), 5, None),
            ],
        )

    def test_each_leaf_of_a_multi_line_use_is_reported_at_its_line(self):
        files = dict(CLEAN)
        files["bottom.rs"] = "pub fn make() {}\npub mod y { pub struct Z; }\n"
        files["top/a.rs"] = """
            use crate::{
                top::Thing,
                bottom::{
                    self,
                    y::{Z, self as why},
                },
            };
            pub struct Thing;
            """
        with Tree(files) as tree:
            code, lines = tree.run()
            shown = tree.path("top/a.rs")
        self.assertEqual(code, 1, lines)
        self.assertEqual(
            violations(lines),
            [
                f"{shown}:4: top imports bottom (crate::bottom)",
                f"{shown}:5: top imports bottom (crate::bottom::y)",
                f"{shown}:5: top imports bottom (crate::bottom::y::Z)",
            ],
        )

    def test_comments_and_literals_are_skipped(self):
        # Every mention of `bottom` here is in a comment or a literal but those on the lines
        # marked REAL, which must be the only ones reported.
        files = dict(CLEAN)
        files["top/a.rs"] = r'''
            //! Inner docs: [`make`](crate::bottom::make).
            /// Outer docs: use crate::bottom::make;
            // use crate::bottom::make;
            /* crate::bottom::make /* nested crate::bottom::make */ crate::bottom::make */
            pub struct Thing;
            fn f<'a>(s: &'a str) -> usize { let q = '"'; let e = '\''; crate::bottom::make(); 0 } // REAL
            const S: &str = "crate::bottom::make \" crate::bottom::make";
            const R: &str = r#"a" crate::bottom::make "b"#;
            const B: &[u8] = b"crate::bottom::make";
            const C: u8 = b'"';
            use crate::bottom::make; // REAL
            const M: &str = "
            crate::bottom::make
            ";
            fn g() { 'outer: loop { break 'outer; } super::super::bottom::make(); } // REAL
            '''
        with Tree(files) as tree:
            code, lines = tree.run()
            shown = tree.path("top/a.rs")
        self.assertEqual(code, 1, lines)
        self.assertEqual(
            violations(lines),
            [
                f"{shown}:6: top imports bottom (crate::bottom::make)",
                f"{shown}:11: top imports bottom (crate::bottom::make)",
                f"{shown}:15: top imports bottom (super::super::bottom::make)",
            ],
        )

    def test_cfg_test_modules_are_counted_and_marked(self):
        files = dict(CLEAN)
        files["bottom.rs"] = """
            pub fn make() {}
            #[cfg(test)]
            #[allow(dead_code)]
            pub(crate) mod tests {
                use crate::top::Thing;
            }
            """
        with Tree(files) as tree:
            code, lines = tree.run("--graph")
        self.assertEqual(code, 0, lines)
        self.assertIn("  bottom -> top: 1 reference in 1 file (1 in tests)", lines)

    def test_the_script_parses_as_python_3_9(self):
        with open(SCRIPT, encoding="utf-8") as f:
            ast.parse(f.read(), SCRIPT, feature_version=(3, 9))


if __name__ == "__main__":
    unittest.main()
