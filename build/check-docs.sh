#!/usr/bin/env bash
# Checks that the documentation's links and the code's references to Markdown files point at files that exist:
#  (a) every relative Markdown link, [text](path) or [text](path#anchor) (and reference definitions, [id]: path), in the
#      Markdown files under LINK_ROOTS resolves, from the linking file's folder (a leading / from the repository root),
#      to a file or folder in the repository; web links (a scheme such as https: or mailto:) and links to an anchor in
#      the same page are not checked, nor are anchors;
#  (b) every token ending in .md in the source and doc files under CITE_ROOTS (a comment's "see README.md",
#      a Markdown path in code) names a file in the repository, relative to the repository root or to the citing
#      file's folder. A bare file name found in neither place is missing, whatever exists outside the repository.
#      Not checked: tokens with a scheme or a revision (https://..., 3bd47ef:README.md), globs (*.md), and the
#      names of files the tools write (GENERATED).
# Prints each problem as "file: missing path" and exits 1 if there is any. Needs only bash, coreutils, grep and awk
# (CI machines have the .NET SDK and little else). Run from anywhere; paths are printed from the repository root.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

LINK_ROOTS=(README.md docs deploy bench examples src)
LINK_EXTENSIONS=(md)
CITE_ROOTS=(README.md src tests docs bench build deploy examples protos)
CITE_EXTENSIONS=(cs md sh py proto yaml)
# Folders never looked into: build outputs, dependencies, tools CI downloads, local runs.
SKIP_DIRS=(bin obj node_modules .git runs .tools TestResults)
# Markdown files the tools write into their output folders (cited by name in code and docs; not in the repository).
GENERATED=(report.md summary.md)

# The files under the given roots whose names end in one of the given extensions, NUL-separated.
find_files() {
  local -n roots=$1 extensions=$2
  local prune=() names=() dir ext
  for dir in "${SKIP_DIRS[@]}"; do prune+=(-name "$dir" -o); done
  for ext in "${extensions[@]}"; do names+=(-name "*.$ext" -o); done
  local existing=()
  for dir in "${roots[@]}"; do [ -e "$dir" ] && existing+=("$dir"); done
  [ ${#existing[@]} -eq 0 ] && return 0
  find "${existing[@]}" \( -type d \( "${prune[@]::${#prune[@]}-1}" \) -prune \) -o \
    \( -type f \( "${names[@]::${#names[@]}-1}" \) -print0 \)
}

# True when the path exists and lies inside the repository (a link out of it would not exist in a clone).
inside_repository() {
  local resolved
  [ -e "$1" ] || return 1
  resolved="$(realpath -m -- "$1")"
  [ "$resolved" = "$root" ] || [[ "$resolved" == "$root"/* ]]
}

problems=()
links=0 citations=0

# (a) Markdown links. Fenced code blocks and inline code spans are not text, so links there are not links.
mapfile -d '' link_files < <(find_files LINK_ROOTS LINK_EXTENSIONS | sort -z)
for file in "${link_files[@]}"; do
  folder="$(dirname "$file")"
  while IFS= read -r target; do
    target="${target#<}"; target="${target%>}"
    target="${target%%[[:space:]]*}"                    # a title after the path: [text](path "title")
    case "$target" in ''|'#'*) continue ;; esac
    [[ "$target" =~ ^[A-Za-z][A-Za-z0-9+.-]*: ]] && continue   # https:, http:, mailto:, ...
    target="${target%%#*}"; target="${target%%\?*}"
    target="${target//%20/ }"
    [ -n "$target" ] || continue
    links=$((links + 1))
    if [[ "$target" == /* ]]; then path="$root$target"; else path="$folder/$target"; fi
    inside_repository "$path" || problems+=("$file: missing $target")
  done < <(awk '
    /^[ \t]*(```|~~~)/ { fence = !fence; next }
    fence { next }
    {
      line = $0
      gsub(/`[^`]*`/, "", line)
      if (match(line, /^[ \t]*\[[^]]+\]:[ \t]*[^ \t]+/)) {
        definition = substr(line, RSTART, RLENGTH)
        sub(/^[ \t]*\[[^]]+\]:[ \t]*/, "", definition)
        print definition
      }
      while (match(line, /\]\([^)]*\)/)) {
        print substr(line, RSTART + 2, RLENGTH - 3)
        line = substr(line, RSTART + RLENGTH)
      }
    }' "$file")
done

# (b) Markdown files cited by name in source and docs.
is_generated() {
  local name="${1##*/}" generated
  for generated in "${GENERATED[@]}"; do [ "$name" = "$generated" ] && return 0; done
  return 1
}
mapfile -d '' cite_files < <(find_files CITE_ROOTS CITE_EXTENSIONS | sort -z)
if [ ${#cite_files[@]} -gt 0 ]; then
  while IFS= read -r hit; do
    file="${hit%%:*}"; token="${hit#*:}"
    token="${token%[!A-Za-z0-9_]}"                      # the character that ended the token
    case "$token" in *:*|*'*'*|*'@'*|*'%'*|*'~'*) continue ;; esac
    [[ "$token" =~ [A-Za-z0-9_-]\.md$ ]] || continue      # ".md" alone, "{name}.md" in code
    is_generated "$token" && continue
    citations=$((citations + 1))
    if [[ "$token" == /* ]]; then
      inside_repository "$root$token" || problems+=("$file: missing $token")
    elif ! inside_repository "$token" && ! inside_repository "$(dirname "$file")/$token"; then
      problems+=("$file: missing $token")
    fi
  done < <(grep -oHE '[A-Za-z0-9_./:*~+%@-]*\.md([^A-Za-z0-9_]|$)' "${cite_files[@]}" || true)
fi

if [ ${#problems[@]} -gt 0 ]; then
  printf '%s\n' "${problems[@]}" | sort -u
  echo "check-docs: $(printf '%s\n' "${problems[@]}" | sort -u | wc -l) missing ($links links, $citations citations checked)" >&2
  exit 1
fi
echo "check-docs: $links links and $citations citations, all found"
