#!/usr/bin/env bash
# Checks that every C++ file under src/, tests/ and bench/ is formatted as .clang-format says.
# With --fix, formats them in place instead.
set -euo pipefail

cd "$(dirname "$0")/.."

mode=check
if [[ ${1:-} == --fix ]]; then
  mode=fix
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [--fix]" >&2
  exit 2
fi

mapfile -d '' files < <(find src tests bench -type f \( -name '*.h' -o -name '*.cc' \) -print0 |
  sort -z)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "==> format: no C++ files found under src/ tests/ bench/" >&2
  exit 1
fi

if [[ $mode == fix ]]; then
  clang-format -i "${files[@]}"
  echo "==> formatted ${#files[@]} files"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "==> format: ${#bad[@]} of ${#files[@]} files are not clang-formatted:" >&2
  printf '      %s\n' "${bad[@]}" >&2
  echo "    first differences:" >&2
  clang-format --dry-run "${bad[0]}" 2>&1 | head -n 20 >&2 || true
  echo "    fix with: scripts/check-format.sh --fix   (or: clang-format -i FILE...)" >&2
  exit 1
fi
echo "==> format: ${#files[@]} files clang-formatted"
