# shellcheck shell=bash
# Shared shell helpers of scripts/*.sh: free loopback ports and PID checks. Sourced, never run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Every function is prefixed `rw_` and only reads state (no signals are sent here): callers
# signal only PIDs they recorded themselves and checked with `rw_pid_is`.

# COUNT distinct free TCP ports on 127.0.0.1, one per line. All are bound at once before
# any is released, so they are distinct; without python3, random high ports nothing answers on.
rw_free_ports() { # COUNT
    local n="$1"
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$n" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)  # keep all bound until the end so the ports are distinct
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
        return
    fi
    local -a got=()
    local p tries=0
    while ((${#got[@]} < n)); do
        ((tries++ < 1000)) || { echo "rw_free_ports: no $n free ports found" >&2; return 1; }
        p=$((20000 + RANDOM % 30000))
        if [[ " ${got[*]-} " == *" $p "* ]]; then continue; fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
        got+=("$p")
    done
    printf '%s\n' "${got[@]}"
}

# The process state letter from /proc (R, S, D, T = stopped by SIGSTOP, Z = zombie, ...);
# fails when there is no such process.
rw_proc_state() { # PID
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    echo "${stat%% *}"
}

# True when PID is a live process: exists and is neither a zombie nor dead.
rw_pid_alive() { # PID
    local state
    [[ "$1" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$1" 2>/dev/null || return 1
    state="$(rw_proc_state "$1")" || return 1
    [[ "$state" != Z && "$state" != X ]]
}

# True when PID is alive and one of its command-line arguments equals ARG exactly (e.g.
# --datadir=/path): a recycled PID never passes, so a stale pid file cannot make a script signal
# an unrelated process.
rw_pid_is() { # PID ARG
    local cmdline
    rw_pid_alive "$1" || return 1
    cmdline="$(tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline")" || return 1
    grep -qxF -- "$2" <<<"$cmdline"
}

# True when PID is alive and its whole command line (arguments joined by spaces) contains TEXT.
rw_pid_cmdline_has() { # PID TEXT
    local cmdline
    rw_pid_alive "$1" || return 1
    cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline")" || return 1
    [[ "$cmdline" == *"$2"* ]]
}

# The first line of FILE when it is a PID (digits only), else nothing; never fails. A pid file
# being rewritten (truncated, then written) reads as nothing: callers that launched the process
# should use the PID they got from `$!` instead.
rw_read_pid() { # FILE
    local p=""
    if [[ -s "$1" ]]; then p="$(head -n 1 "$1" 2>/dev/null | tr -dc '0-9')" || p=""; fi
    if [[ -n "$p" ]]; then echo "$p"; fi
    return 0
}

# Waits until PID is gone (or a zombie): true if so within SECONDS.
rw_wait_gone() { # PID SECONDS
    local deadline=$((SECONDS + $2))
    while rw_pid_alive "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
    return 0
}

# Sets variable VAR to the current time in milliseconds since the epoch, without forking (bash
# 5's EPOCHREALTIME; `date` otherwise): for the phase timings of the failover drills.
rw_stamp() { # VAR
    local t
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        t="${EPOCHREALTIME/[.,]/}"
        printf -v "$1" '%s' "$((10#$t / 1000))"
    else
        printf -v "$1" '%s' "$(($(date +%s%N) / 1000000))"
    fi
}
