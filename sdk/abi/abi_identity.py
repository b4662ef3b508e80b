#!/usr/bin/env python3
"""The plugin contract's ABI identity, derived from the contract's headers.

The identity is the first 16 hex digits of a SHA-256 over every contract
header (each file's path under the include directory, then its text with
comments removed and every run of white space made one space). A change to
any declaration, virtual, struct member, macro or enum in those headers gives
a new identity; a change to a comment or to indentation does not.

    abi_identity.py --include-dir DIR [--record FILE] [--out HEADER]
                    [--print] HEADER...

--include-dir  the directory the headers' include paths start from; every
               header under its corral/sdk and corral/proto folders must be
               listed (so a new contract header cannot be left out).
--record       the identity recorded in the source tree (sdk/ABI). When the
               headers give another one, this fails and says what to do: a
               contract change must be made on purpose.
--out          writes corral/sdk/abi_identity.hpp.
--print        prints the identity.
"""
import argparse
import hashlib
import re
import pathlib
import sys

CONTRACT_DIRS = ("corral/sdk", "corral/proto")
GENERATED = {"corral/sdk/abi_identity.hpp"}


def strip_comments(text):
    """`text` with // and /* */ comments replaced by a space; string and
    character literals are kept as they are."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            i = n if j < 0 else j
            out.append(" ")
        elif c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            if j < 0:
                raise ValueError("unterminated /* comment")
            i = j + 2
            out.append(" ")
        elif c in "\"'":
            # A ' between two digits or hex letters is a digit separator.
            if c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum():
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n":
                    raise ValueError("unterminated literal")
                j += 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def normalize(text):
    """The header as tokens: comments removed, white space kept only where it
    separates two words (`int* p` and `int *p` are the same), and the
    #include lines as a sorted set (their order is not the contract)."""
    text = text.replace("\\\r\n", " ").replace("\\\n", " ")
    text = strip_comments(text)
    includes, rest = [], []
    for line in text.split("\n"):
        if line.strip().startswith("#include"):
            includes.append(line)
        elif line.strip().startswith("#"):
            rest.append(line + " \x01")  # a directive ends at its line's end
        else:
            rest.append(line)
    out = []
    for chunk in re.split(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')", " ".join(rest)):
        if chunk.startswith(("\"", "'")):
            out.append(chunk)
            continue
        chunk = " ".join(chunk.split())
        out.append(re.sub(r"(?<=\W) | (?=\W)", "", chunk))
    return " ".join(sorted(" ".join(i.split()) for i in includes)) + "\n" + "".join(out)


def identity(include_dir, headers):
    h = hashlib.sha256()
    for rel in sorted(headers):
        h.update(rel.encode() + b"\0")
        h.update(normalize((include_dir / rel).read_text()).encode() + b"\0")
    return h.hexdigest()[:16]


def contract_headers(include_dir):
    found = set()
    for d in CONTRACT_DIRS:
        for p in (include_dir / d).glob("*.hpp"):
            found.add(p.relative_to(include_dir).as_posix())
    return found - GENERATED


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--include-dir", required=True)
    ap.add_argument("--record")
    ap.add_argument("--out")
    ap.add_argument("--print", action="store_true")
    ap.add_argument("headers", nargs="*")
    a = ap.parse_args(argv)
    inc = pathlib.Path(a.include_dir).resolve()
    listed = set()
    for hdr in a.headers:
        listed.add(pathlib.Path(hdr).resolve().relative_to(inc).as_posix())
    present = contract_headers(inc)
    if a.headers and listed != present:
        missing = sorted(present - listed)
        extra = sorted(listed - present)
        sys.exit("abi_identity: the contract header list in sdk/meson.build is out of date"
                 + (f"; not listed: {', '.join(missing)}" if missing else "")
                 + (f"; listed but absent: {', '.join(extra)}" if extra else ""))
    ident = identity(inc, present)
    if a.record:
        rec_path = pathlib.Path(a.record)
        recorded = rec_path.read_text().split()[0] if rec_path.exists() else "(none)"
        if recorded != ident:
            sys.exit(
                f"abi_identity: the plugin contract changed: its headers now give ABI identity {ident}, "
                f"but {rec_path} records {recorded}.\n"
                "Plugins built against the recorded contract would load and misbehave. If the change is "
                f"meant, write {ident} into {rec_path} (modules built before it will be refused with a "
                "message naming both identities); if not, undo the change to the contract headers.")
    if a.out:
        text = (
            "// Generated by sdk/abi/abi_identity.py from the contract headers; do not edit.\n"
            "#pragma once\n\n"
            "// The plugin contract's ABI identity: a hash of corral/sdk/*.hpp and\n"
            "// corral/proto/*.hpp, comments and spacing aside.\n"
            f"#define CORRAL_ABI_IDENTITY \"{ident}\"\n")
        out = pathlib.Path(a.out)
        if not out.exists() or out.read_text() != text:
            out.write_text(text)
    if a.print:
        print(ident)


if __name__ == "__main__":
    main(sys.argv[1:])
