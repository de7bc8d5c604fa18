# Sourced by the down.sh scripts: stop_run NAME DIR stops the process whose
# pid is in DIR/pid (SIGTERM, then SIGKILL after 5 s) and removes DIR.
stop_run() {
  local name=$1 dir=$2 pid
  [ -f "$dir/pid" ] || { echo "$name not running"; return 0; }
  pid=$(cat "$dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -rf "$dir"
  echo "$name stopped"
}
