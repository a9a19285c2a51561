# Building the binaries for the demo. Sourced, not run.
#
# The demo and the tests build with one profile (dev, dependencies optimised:
# see Cargo.toml), so whichever of the two commands runs first pays for
# RocksDB's and librdkafka's C and C++ once, and the other reuses it.

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
# The demo's and the tests' builds together filled 3.2 GiB; with room to spare.
BUILD_DISK_GIB=5

# The folder cargo writes a profile's binaries to.
profile_dir() {
  case $1 in
    dev) echo "$TARGET_DIR/debug" ;;
    *) echo "$TARGET_DIR/$1" ;;
  esac
}

# True when RocksDB's C++ has been built for this profile already.
native_deps_built() {
  compgen -G "$(profile_dir "$1")/build/librocksdb-sys-*/out/librocksdb.a" >/dev/null
}

build_binaries() {
  local profile=$1
  if ! native_deps_built "$profile"; then
    mkdir -p "$TARGET_DIR"
    local free
    free=$(df -P -BG "$TARGET_DIR" | awk 'NR == 2 { sub("G", "", $4); print $4 }')
    if [ "${free:-0}" -lt "$BUILD_DISK_GIB" ]; then
      die "not enough disk for the first build: ${free} GiB free in $TARGET_DIR, it needs about $BUILD_DISK_GIB GiB (free some space, or set CARGO_TARGET_DIR to a folder on a larger disk)"
    fi
    log "first build ($profile profile): compiling RocksDB's C++, librdkafka's C and about 400 Rust crates."
    log "  This takes about 10 minutes on two cores (less with more), once: later runs, and scripts/test, reuse it."
  fi
  log "building the binaries ($profile profile, into $TARGET_DIR)"
  cargo build --locked --profile "$profile" --workspace --bins
}
