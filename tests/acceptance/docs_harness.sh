# Sourced before each shell block of the docs that tests/acceptance/test_docs_commands.py runs.
#
# A block runs as a reader would type it into one terminal, with three differences:
# * commands that run until stopped (cloudsms serve/demo/listen/smsc-sim, make run) are started
#   in the background, in their own session, and waited for until they say they listen (a reader
#   runs them in another terminal); servers started by an earlier block are stopped first (a
#   reader stops one layout before starting the next);
# * `make test` is checked with `make -n` (the docs test is part of `make test`);
# * curl fails on an HTTP error status (--fail-with-body), so a refused request fails the block.
# Variables a block sets are kept for the next blocks of the same file (one terminal per file).
# Environment from the test: DOCS_SCRATCH, DOCS_REPO, DOCS_BLOCK, DOCS_STATE, DOCS_SIM_PORT.

__docs_base_vars=" $(compgen -v | tr '\n' ' ') "
if [[ -f "$DOCS_STATE" ]]; then
    # shellcheck disable=SC1090
    source "$DOCS_STATE"
fi

__docs_save_state() {
    local name
    for name in $(compgen -v); do
        case "$__docs_base_vars" in *" $name "*) continue ;; esac
        case "$name" in __docs* | BASH* | FUNCNAME | PIPESTATUS | _ | name) continue ;; esac
        declare -p "$name" 2>/dev/null || true
    done >"$DOCS_STATE.tmp"
    mv "$DOCS_STATE.tmp" "$DOCS_STATE"
}
trap __docs_save_state EXIT

# ERR trap (set by the block's header): name the failing line of the Markdown file. The line is
# the main script's (the caller's, when a function failed); DOCS_WHERE is "FILE:OFFSET".
__docs_err() {
    local line=${BASH_LINENO[${#FUNCNAME[@]}-2]}
    echo "docs-test: ${DOCS_WHERE%:*}:$((line + ${DOCS_WHERE##*:})): exit $1 from: $2" >&2
}

# The subcommand of a cloudsms command line: its first word that is not a global option.
__docs_subcommand() {
    local skip=0 word
    for word in "$@"; do
        if ((skip)); then
            skip=0
            continue
        fi
        case "$word" in
            --database-url | --config) skip=1 ;;
            -*) ;;
            *)
                printf '%s' "$word"
                return
                ;;
        esac
    done
}

# Stop the servers earlier blocks started (SIGTERM to their session, then SIGKILL).
__docs_stop_earlier() {
    local block pid log rest
    [[ -f "$DOCS_SCRATCH/background.tsv" ]] || return 0
    while IFS=$'\t' read -r block pid log rest; do
        ((block < DOCS_BLOCK)) || continue
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done <"$DOCS_SCRATCH/background.tsv"
}

# __docs_start PATTERN... -- COMMAND ARGS: run COMMAND in the background until its output has
# every PATTERN (it listens), for at most 90 s.
__docs_start() {
    local patterns=() pattern log pid
    while [[ $1 != -- ]]; do
        patterns+=("$1")
        shift
    done
    shift
    __docs_stop_earlier
    log=$(mktemp "$DOCS_SCRATCH/background-XXXXXX.log")
    setsid "$@" >"$log" 2>&1 </dev/null &
    pid=$!
    printf '%s\t%s\t%s\t%s\n' "$DOCS_BLOCK" "$pid" "$log" "$*" >>"$DOCS_SCRATCH/background.tsv"
    for _ in $(seq 900); do
        local ready=1
        for pattern in "${patterns[@]}"; do
            grep -qF -- "$pattern" "$log" || ready=0
        done
        ((ready)) && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "docs-test: '$*' stopped before it listened; its output:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "docs-test: '$*' did not say it listens (${patterns[*]}) in 90 s; its output:" >&2
    cat "$log" >&2
    return 1
}

__docs_admin_enabled() {
    case "${CLOUDSMS_ADMIN_ENABLED:-true}" in
        false | False | FALSE | 0 | no | off) return 1 ;;
    esac
}

cloudsms() {
    local sub
    sub=$(__docs_subcommand "$@")
    case "$sub" in
        serve)
            if __docs_admin_enabled; then
                __docs_start "(UIP endpoint)" "(admin listener" -- cloudsms "$@"
            else  # a worker's listener serves health checks only
                __docs_start "/dave/io (" -- cloudsms "$@"
            fi
            ;;
        demo)
            if [[ " $* " == *" --no-serve "* ]]; then
                command cloudsms "$@"
            else
                CLOUDSMS_SIMULATOR_PORT="${CLOUDSMS_SIMULATOR_PORT:-$DOCS_SIM_PORT}" \
                    __docs_start "(UIP endpoint)" -- cloudsms "$@"
            fi
            ;;
        listen) __docs_start "listening for reports on" -- cloudsms "$@" ;;
        smsc-sim) __docs_start "SMSC simulator listening on" -- cloudsms "$@" ;;
        *) command cloudsms "$@" ;;
    esac
}

make() {
    case "$*" in
        run)
            CLOUDSMS_SIMULATOR_PORT="${CLOUDSMS_SIMULATOR_PORT:-$DOCS_SIM_PORT}" \
                CLOUDSMS_DATABASE_URL="${CLOUDSMS_DATABASE_URL:-sqlite:///$DOCS_SCRATCH/cloudsms.db}" \
                __docs_start "(UIP endpoint)" "(admin listener" -- make -C "$DOCS_REPO" run
            ;;
        test) command make -C "$DOCS_REPO" -n test >/dev/null ;;
        *) command make -C "$DOCS_REPO" "$@" ;;
    esac
}

curl() {
    command curl --fail-with-body "$@"
}
