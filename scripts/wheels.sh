# Sourced by scripts/cuda-deps.sh and scripts/build-cuda-profiler.sh: fetch NVIDIA's PyPI
# wheels into a cache and unpack them into one folder. Not executable on its own.
#
# fetch_wheels TAG CACHE ROOT SPEC [SPEC ...]
#   TAG    prefix of the progress lines (stderr)
#   CACHE  folder holding the downloaded wheels (CACHE/wheels)
#   ROOT   folder the wheels are unpacked into
#   SPEC   name==version, pinned (the device's driver refuses newer PTX than it knows)
# Idempotent: a stamp per wheel is written only after a complete unpack, so an interrupted
# run retries and a finished one downloads nothing.
fetch_wheels() {
    local tag="$1" cache="$2" root="$3"
    shift 3
    mkdir -p "$cache/wheels" "$root"
    local spec name version stamp whl_glob whl
    for spec in "$@"; do
        name="${spec%%==*}"
        version="${spec##*==}"
        stamp="$root/.$name-$version.done"
        [[ -f "$stamp" ]] && continue
        whl_glob="$cache/wheels/${name//-/_}-$version-*.whl"
        # shellcheck disable=SC2086
        if ! ls $whl_glob >/dev/null 2>&1; then
            echo "$tag: downloading $spec" >&2
            python3 -m pip download --quiet --no-deps --only-binary=:all: \
                --platform manylinux2010_x86_64 --platform manylinux_2_12_x86_64 \
                --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
                --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
                -d "$cache/wheels" "$spec" >&2
        fi
        # shellcheck disable=SC2086
        for whl in $whl_glob; do
            echo "$tag: unpacking $(basename "$whl")" >&2
            python3 -m zipfile -e "$whl" "$root"
        done
        touch "$stamp"
    done
}
