# Process helpers shared by scripts/services.sh and scripts/sandbox.sh (sourced, not run):
# every server starts in its own session with its pid in a file, and is stopped by that
# pid only — never by name, so other stacks on the machine are left alone.
#
# The sourcing script sets LOG_TAG (its name in log lines) and VENV (for free_port).

log() { echo "${LOG_TAG:-procs}: $*" >&2; }

alive() { # pidfile
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# Starts a server in its own session, logging to DIR/NAME.log, pid in DIR/NAME.pid.
launch() { # dir, name, command...
  local dir=$1 name=$2
  shift 2
  setsid "$@" >"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}

# A port nothing listens on now (the kernel's pick), for servers that take a port number.
free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # log file, seconds, command...: fails the script with the log's tail
  local logfile=$1 secs=$2
  shift 2
  for _ in $(seq $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$(basename "$logfile" .log) did not come up in ${secs}s; the end of $logfile:"
  tail -20 "$logfile" >&2
  exit 1
}

stop_pidfile() { # name, pidfile: SIGTERM, then SIGKILL after 20s
  local pid
  [ -f "$2" ] || return 0
  pid=$(cat "$2")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$1 (pid $pid) ignored SIGTERM for 20s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped $1 (pid $pid)"
  fi
  rm -f "$2"
}
