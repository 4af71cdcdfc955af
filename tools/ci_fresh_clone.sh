#!/usr/bin/env bash
# Run CI as a new user's fresh clone would: a clean `git clone` of REF in a deep temporary
# folder (project root longer than 100 characters), ../shared/data beside it, CI=true, no
# COLUMNS, no terminal, stdin closed. Prints the last lines of the log and the exit code.
#
#   tools/ci_fresh_clone.sh [--demo] [--keep] [REF]     (REF: default HEAD of this checkout)
#
#   --demo   also run `make demo` in the clone (no terminal, fresh FAIRSER_CACHE) after CI
#   --keep   keep the temporary folder (it is kept anyway when something fails)
#
# The clone gets its own .venv (about 5 minutes to install), so run it once per change.
set -uo pipefail

demo=0 keep=0 ref=HEAD
for arg in "$@"; do
    case "$arg" in
        --demo) demo=1 ;;
        --keep) keep=1 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $arg (see --help)" >&2; exit 2 ;;
        *) ref=$arg ;;
    esac
done

src=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 2
commit=$(git -C "$src" rev-parse --verify "$ref^{commit}") || { echo "no commit $ref" >&2; exit 2; }
shared=$(cd "$src/.." && pwd)/shared
[ -d "$shared/data" ] || { echo "no shared data at $shared/data (CI has it there)" >&2; exit 2; }

base=$(mktemp -d "${TMPDIR:-/tmp}/fairser-fresh.XXXXXX")
trap 'echo "interrupted; kept $base (remove it with rm -rf)" >&2; exit 130' INT TERM
parent=$base/a-deliberately-long-folder-name-for-the-fresh-clone/and-one-more-level
root=$parent/fairser
while [ ${#root} -le 100 ]; do parent=$parent/deeper; root=$parent/fairser; done
mkdir -p "$parent"
ln -s "$shared" "$parent/shared"  # <parent>/shared/data, as CI sees it
log=$base/ci.log

echo "fresh clone of $commit in $root (${#root} characters)"
git clone --quiet --no-checkout "$src" "$root" && git -C "$root" checkout --quiet --detach "$commit" \
    || { echo "clone failed; kept $base" >&2; exit 2; }

(cd "$root" && env -u COLUMNS -u FAIRSER_CACHE CI=true bash .ci/run) </dev/null >"$log" 2>&1
rc=$?
tail -n 15 "$log"
echo "== .ci/run exit code: $rc (log: $log)"

if [ "$demo" = 1 ]; then
    (cd "$root" && env -u COLUMNS FAIRSER_CACHE="$base/cache" make demo) </dev/null \
        >"$base/demo.log" 2>&1
    drc=$?
    tail -n 12 "$base/demo.log"
    echo "== make demo exit code: $drc (log: $base/demo.log)"
    [ "$rc" = 0 ] && rc=$drc
fi

if [ "$rc" = 0 ] && [ "$keep" = 0 ]; then
    rm -rf "$base"
else
    echo "kept $base"
fi
exit "$rc"
