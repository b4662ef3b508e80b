"""The plugin ABI identity follows the contract headers: any change to a
declaration gives a new identity, a change to comments or spacing does not,
and the build refuses an identity that sdk/ABI does not record."""
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "sdk/abi/abi_identity.py"
INCLUDE = REPO / "sdk/include"


def headers(inc):
    return sorted(str(p) for d in ("corral/sdk", "corral/proto") for p in (inc / d).glob("*.hpp"))


def run(inc, *extra, listed=None):
    return subprocess.run([sys.executable, str(SCRIPT), "--include-dir", str(inc), "--print", *extra,
                           *(headers(inc) if listed is None else listed)],
                          capture_output=True, text=True)


def identity(inc):
    r = run(inc)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


class AbiIdentity(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp())
        self.inc = self.tmp / "include"
        shutil.copytree(INCLUDE, self.inc, ignore=shutil.ignore_patterns("meson.build"))
        self.base = identity(self.inc)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def edit(self, rel, old, new):
        p = self.inc / rel
        text = p.read_text()
        self.assertIn(old, text)
        p.write_text(text.replace(old, new, 1))

    def test_the_recorded_identity_is_the_headers(self):
        recorded = (REPO / "sdk/ABI").read_text().split()[0]
        self.assertEqual(identity(INCLUDE), recorded)

    def test_a_virtual_inserted_changes_it(self):
        self.edit("corral/sdk/recipe.hpp", "virtual void close() = 0;",
                  "virtual void close() = 0;\n  virtual void flush() = 0;")
        self.assertNotEqual(identity(self.inc), self.base)

    def test_a_struct_member_reordered_changes_it(self):
        self.edit("corral/sdk/types.hpp", "  Zxid zxid = 0;\n  int64_t time_ms = 0;",
                  "  int64_t time_ms = 0;\n  Zxid zxid = 0;")
        self.assertNotEqual(identity(self.inc), self.base)

    def test_a_signature_changed_changes_it(self):
        self.edit("corral/proto/records.hpp", "int32_t version = -1;", "int64_t version = -1;")
        self.assertNotEqual(identity(self.inc), self.base)

    def test_comments_and_spacing_do_not_change_it(self):
        self.edit("corral/sdk/recipe.hpp", "virtual void close() = 0;",
                  "virtual   void close()  =  0;  // closes it\n  /* a block\n comment */")
        self.edit("corral/sdk/types.hpp", "#pragma once", "// A new comment.\n#pragma once\n\n")
        self.assertEqual(identity(self.inc), self.base)

    def test_formatting_does_not_change_it(self):
        # What clang-format may do: move a '*', wrap a line, reorder includes.
        self.edit("corral/sdk/storage.hpp", "virtual Status truncate_after(Zxid zxid) = 0;",
                  "virtual Status\n      truncate_after( Zxid zxid )=0;")
        text = (self.inc / "corral/sdk/recipe.hpp").read_text()
        a, b = '#include "corral/proto/codes.hpp"', '#include "corral/proto/records.hpp"'
        self.assertIn(a + "\n" + b, text)
        (self.inc / "corral/sdk/recipe.hpp").write_text(text.replace(a + "\n" + b, b + "\n" + a))
        self.assertEqual(identity(self.inc), self.base)

    def test_a_directive_is_one_line(self):
        self.edit("corral/sdk/plugin.hpp", "#pragma once", "#pragma once\n#define CORRAL_X\nint corral_y;")
        one = identity(self.inc)
        self.edit("corral/sdk/plugin.hpp", "#define CORRAL_X\nint corral_y;", "#define CORRAL_X int corral_y;")
        self.assertNotEqual(identity(self.inc), one)

    def test_a_comment_marker_inside_a_string_is_not_a_comment(self):
        self.edit("corral/sdk/plugin.hpp", "#define CORRAL_BUILD_ID", "#define CORRAL_X \"a // b\"\n#define CORRAL_BUILD_ID")
        changed = identity(self.inc)
        self.edit("corral/sdk/plugin.hpp", "\"a // b\"", "\"a // c\"")
        self.assertNotEqual(identity(self.inc), changed)

    def test_the_build_refuses_an_unrecorded_change_naming_both(self):
        record = self.tmp / "ABI"
        record.write_text(self.base + "\n")
        self.assertEqual(run(self.inc, "--record", str(record)).returncode, 0)
        self.edit("corral/sdk/storage.hpp", "#pragma once", "#pragma once\nstruct Extra { int x; };")
        r = run(self.inc, "--record", str(record))
        self.assertNotEqual(r.returncode, 0)
        new = identity(self.inc)
        self.assertIn(f"now give ABI identity {new}", r.stderr)
        self.assertIn(f"records {self.base}", r.stderr)

    def test_a_contract_header_left_out_of_the_list_fails(self):
        (self.inc / "corral/sdk/extra.hpp").write_text("#pragma once\nstruct Extra {};\n")
        listed = [h for h in headers(self.inc) if not h.endswith("extra.hpp")]
        r = run(self.inc, listed=listed)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not listed: corral/sdk/extra.hpp", r.stderr)

    def test_the_generated_header_carries_it(self):
        out = self.tmp / "abi_identity.hpp"
        self.assertEqual(run(self.inc, "--out", str(out)).returncode, 0)
        self.assertIn(f'#define CORRAL_ABI_IDENTITY "{self.base}"', out.read_text())


if __name__ == "__main__":
    unittest.main()
