# Shared by the scripts in this folder (source it; it defines functions only).

# Prints the target directory cargo uses for the workspace in the current
# directory: CARGO_TARGET_DIR when set, else `build.target-dir` of a
# .cargo/config.toml, else the workspace's `target/`. Asking cargo, rather
# than assuming `target/`, keeps the scripts right in every set-up.
target_dir() {
  local metadata dir
  metadata=$(cargo metadata --format-version 1 --no-deps) || return 1
  dir=$(printf '%s' "$metadata" | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  if [ -z "$dir" ]; then
    echo "cargo metadata did not name a target directory" >&2
    return 1
  fi
  printf '%s\n' "$dir"
}
