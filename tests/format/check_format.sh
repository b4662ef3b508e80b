#!/usr/bin/env bash
# Every C and C++ source is as clang-format (.clang-format) writes it.
# `./dev format` rewrites them so.
set -euo pipefail
cd "$(dirname "$0")/../.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$fmt" ]; then
  echo "check_format: clang-format is not installed (apt-get install clang-format)" >&2
  exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.c' '*.h')
else
  mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune -o \
                         \( -name '*.cpp' -o -name '*.hpp' -o -name '*.c' -o -name '*.h' \) -print)
fi
if ! "$fmt" --dry-run --Werror "${files[@]}" 2>/tmp/check_format.$$; then
  grep -E "^[^ ].*: (error|warning):" /tmp/check_format.$$ | cut -d: -f1 | sort -u | sed 's/^/  not formatted: /' >&2
  rm -f /tmp/check_format.$$
  echo "check_format: run ./dev format" >&2
  exit 1
fi
rm -f /tmp/check_format.$$
echo "check_format: ${#files[@]} files formatted"
