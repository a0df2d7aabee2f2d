# A throwaway NATS + router for scripts/demo and scripts/bench. Source it after
# scripts/tools.sh and ensure_nats_server, then:
#
#   stack_start [ENV=VALUE ...]  starts nats-server -js (free port, temporary
#                                store) and target/release/ticket-router serve
#                                with deploy/ticket-router.toml plus the given
#                                environment overrides; sets STACK_NATS_URL,
#                                STACK_GRPC_URL, STACK_METRICS_URL, STACK_DIR.
#   stack_stop                   stops the router (SIGTERM), then NATS, and
#                                removes the temporary directory. Safe to call
#                                twice; scripts call it from their EXIT trap.
#
# Both servers run in their own sessions (setsid), so a Ctrl-C in the terminal
# reaches only the foreground program; stack_stop then stops them in order.

STACK_DIR=""
STACK_NATS_PID=""
STACK_ROUTER_PID=""

# stack_wait_for FILE PATTERN SECONDS PID: the first line of FILE matching PATTERN.
stack_wait_for() {
    local file="$1" pattern="$2" seconds="$3" pid="$4" i line
    for ((i = 0; i < seconds * 10; i++)); do
        line=$(grep -m1 -E "$pattern" "$file" 2>/dev/null || true)
        if [ -n "$line" ]; then
            echo "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

stack_start() {
    STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ticket-router-stack.XXXXXX")
    mkdir -p "$STACK_DIR/nats"
    setsid "$NATS_SERVER_BIN" -js -a 127.0.0.1 -p -1 -sd "$STACK_DIR/nats" >"$STACK_DIR/nats.log" 2>&1 </dev/null &
    STACK_NATS_PID=$!
    local line
    line=$(stack_wait_for "$STACK_DIR/nats.log" "Listening for client connections on" 20 "$STACK_NATS_PID") || {
        echo "stack: nats-server did not start; its log:" >&2
        tail -n 20 "$STACK_DIR/nats.log" >&2
        return 1
    }
    STACK_NATS_URL="nats://127.0.0.1:${line##*:}"
    cp deploy/ticket-router.toml "$STACK_DIR/ticket-router.toml"
    env TICKET_ROUTER_NATS_URL="$STACK_NATS_URL" TICKET_ROUTER_GRPC_LISTEN=127.0.0.1:0 \
        TICKET_ROUTER_METRICS_LISTEN=127.0.0.1:0 "$@" \
        setsid "${ROUTER_BIN:-target/release/ticket-router}" serve --config "$STACK_DIR/ticket-router.toml" \
        >"$STACK_DIR/router.out" 2>"$STACK_DIR/router.log" </dev/null &
    STACK_ROUTER_PID=$!
    line=$(stack_wait_for "$STACK_DIR/router.out" "^ticket-router ready: " 60 "$STACK_ROUTER_PID") || {
        echo "stack: the router did not become ready; its log:" >&2
        tail -n 30 "$STACK_DIR/router.log" >&2
        return 1
    }
    local grpc metrics
    grpc=$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' <<<"$line")
    metrics=$(sed -n 's/.*metrics=\([^ ]*\).*/\1/p' <<<"$line")
    STACK_GRPC_URL="http://$grpc"
    STACK_METRICS_URL="http://$metrics/metrics"
}

# stack_kill PID SECONDS: SIGTERM, then SIGKILL after SECONDS; waits for the exit.
stack_kill() {
    local pid="$1" seconds="$2" i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stack_stop() {
    # A second Ctrl-C (or TERM) must not cut the cleanup short: NATS and the
    # temporary store would be left behind.
    trap '' INT TERM HUP
    stack_kill "$STACK_ROUTER_PID" 12
    stack_kill "$STACK_NATS_PID" 10
    STACK_ROUTER_PID=""
    STACK_NATS_PID=""
    if [ -n "$STACK_DIR" ] && [ -d "$STACK_DIR" ]; then
        rm -rf "$STACK_DIR"
    fi
    STACK_DIR=""
}
