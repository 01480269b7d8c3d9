#!/bin/bash
# Runs what `docker build` runs for each image, without a Docker engine (CI has none): every RUN step of the stages
# whose output the image copies (restore and publish on the SDK image, and for the sidecar the public model's
# preparation), in order, on this machine's .NET, in a copy of the committed sources, with the images' own folders
# (/src, /app, /models) mapped under a temporary root and the build arguments at their defaults (TORCH=cpu). Then every
# COPY --from of those stages must find what it copies, and the entry point's DLL must be among it. The README's quick
# start builds these images; this is the part of it that can run here. (Not checked: .dockerignore, file modes, and the
# base images themselves.) The steps see this shell's environment: CI sets Sidecar__Model__* to prepare the public
# models at toy size.
set -euo pipefail
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/image-builds.XXXXXX")"
trap 'rm -rf "$work"' EXIT

build_image() {
  local dockerfile="$1" fs="$work/${1##*/}"
  mkdir -p "$fs"
  # Instructions with continuation lines joined and comments dropped.
  local -a lines
  mapfile -t lines < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dockerfile" | grep -v '^\s*#' | grep -v '^\s*$')
  local -A args sdk_stages copied_from
  local line stage="" in_sdk=false cwd="$fs"
  # The stages whose output some COPY --from takes: they run whatever their base image.
  for line in "${lines[@]}"; do
    [[ "$line" =~ ^COPY\ --from=([^[:space:]]+) ]] && copied_from[${BASH_REMATCH[1]}]=1
    if [[ "$line" == COPY\ --from=* ]] && ! [[ "$line" =~ ^COPY\ --from=[^[:space:]]+\ [^[:space:]]+\ [^[:space:]]+$ ]]; then
      echo "${dockerfile#$root_dir/}: cannot read '$line' (COPY --from=STAGE SOURCE DEST only)" >&2; exit 1
    fi
  done
  for line in "${lines[@]}"; do
    read -r instruction rest <<<"$line"
    case "$instruction" in
      FROM)
        local image name=""
        image="${rest%% *}"
        [[ "$rest" =~ [[:space:]]AS[[:space:]]+([^[:space:]]+) ]] && name="${BASH_REMATCH[1]}"
        if [[ "$image" == mcr.microsoft.com/dotnet/sdk:* || -n "${sdk_stages[$image]:-}" ]] || { [ -n "$name" ] && [ -n "${copied_from[$name]:-}" ]; }; then
          in_sdk=true; [ -n "$name" ] && sdk_stages[$name]=1
          echo "== ${dockerfile#$root_dir/}: stage ${name:-$image}"
        else
          in_sdk=false
        fi
        stage="$name" ;;
      ARG)
        local key="${rest%%=*}" value=""
        [[ "$rest" == *=* ]] && value="${rest#*=}"
        [ -z "$stage" ] && args[$key]="$value"               # a global ARG: its default
        [ -n "$stage" ] && [ -z "${args[$key]+x}" ] && args[$key]="$value"
        export "$key=${args[$key]}" ;;
      WORKDIR)
        $in_sdk || continue
        cwd="$fs$rest"; mkdir -p "$cwd" ;;
      COPY)
        $in_sdk || continue
        if [[ "$rest" == --from=* ]]; then
          # Within these stages all images share one root: the copy is needed only between different folders.
          read -r _ from_path to_path <<<"$rest"
          [ "$from_path" = "$to_path" ] || { mkdir -p "$fs$to_path"; cp -a "$fs$from_path/." "$fs$to_path/"; }
          continue
        fi
        # The build context is the repository as committed (.dockerignore keeps outputs out of it the same way).
        read -r -a parts <<<"$rest"
        local dest="${parts[-1]}"
        [[ "$dest" == /* ]] && dest="$fs$dest" || dest="$cwd/$dest"
        for source in "${parts[@]:0:${#parts[@]}-1}"; do
          if [ "$source" = . ] || [ -d "$root_dir/$source" ]; then
            local prefix="${source%/}/"; [ "$source" = . ] && prefix=""
            while IFS= read -r -d '' file; do install -D -m 644 "$root_dir/$file" "$dest/${file#"$prefix"}"; done \
              < <(cd "$root_dir" && git ls-files -z -- "$source")
          elif [[ "$dest" == */ ]]; then install -D -m 644 "$root_dir/$source" "$dest$(basename "$source")"
          else install -D -m 644 "$root_dir/$source" "$dest"
          fi
        done ;;
      RUN)
        $in_sdk || continue
        # The image's absolute folders, under this build's root.
        local command
        command="$(sed -E "s#(^|[ =])/(src|app|models)(/|\b)#\1$fs/\2\3#g" <<<"$rest")"
        echo "RUN $rest"
        # Its output only when it fails: restore and publish list every project.
        if ! (cd "$cwd" && bash -euo pipefail -c "$command") > "$work/step.log" 2>&1; then cat "$work/step.log" >&2; exit 1; fi ;;
    esac
  done
  # What the runtime image copies out of the stages just built must be there, the entry point's DLL among it.
  local copied=0
  for line in "${lines[@]}"; do
    [[ "$line" =~ ^COPY\ --from=([^[:space:]]+)\ ([^[:space:]]+)\ ([^[:space:]]+)$ ]] || continue
    [ -n "${sdk_stages[${BASH_REMATCH[1]}]:-}" ] || continue
    local from="$fs${BASH_REMATCH[2]}"
    if [ ! -e "$from" ] || [ -z "$(ls -A "$from")" ]; then echo "${dockerfile#$root_dir/}: COPY --from=${BASH_REMATCH[1]} ${BASH_REMATCH[2]} finds nothing" >&2; exit 1; fi
    copied=$((copied + 1))
  done
  [ "$copied" -gt 0 ] || { echo "${dockerfile#$root_dir/}: the runtime image copies nothing out of the stages built here" >&2; exit 1; }
  local dll
  dll="$(grep -o '"[A-Za-z0-9_.-]*\.dll"' <<<"$(grep '^ENTRYPOINT' "$dockerfile")" | tr -d '"')"
  [ -f "$fs/app/$dll" ] || { echo "${dockerfile#$root_dir/}: the entry point's $dll was not published into /app" >&2; exit 1; }
  echo "build ok: ${dockerfile#$root_dir/} ($copied copies into the runtime image, entry point $dll)"
  rm -rf "$fs"
}

for dockerfile in "$root_dir"/deploy/Dockerfile.*; do
  build_image "$dockerfile"
done
