# Helpers shared by the render benchmarks (sourced by scripts/bench-render and
# scripts/bench-engine; not a command of its own).

# Sets `cpu` to the seconds of user+system CPU used by finished children so far (bash's `times`,
# second line). Must run in the benchmark's shell, not in $(…): a subshell counts its own children.
child_cpu() {
  local user sys
  times > "$work/times"
  { read -r _ _; read -r user sys; } < "$work/times"
  cpu=$(awk -v u="$user" -v s="$sys" 'function sec(t) { split(t, a, "m"); return a[1] * 60 + a[2] }
    BEGIN { printf "%.2f", sec(u) + sec(s) }')
}

# Runs a command once; sets `wall`, `used` (CPU seconds of it and its children) and `rss` (KiB,
# the VmHWM of the command's own process, read until it exits: a high-water mark, so the last
# reading is the peak; ffmpeg children of a render are not counted).
timed() {
  local start cpu0 pid key value
  child_cpu; cpu0=$cpu
  start=$EPOCHREALTIME
  "$@" &
  pid=$!
  rss=0
  while [ -r "/proc/$pid/status" ]; do
    while read -r key value _; do
      [ "$key" = "VmHWM:" ] && rss=$value
    done 2>/dev/null < "/proc/$pid/status" || true
    sleep 0.1
  done
  wait "$pid"
  wall=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
  child_cpu
  used=$(awk -v a="$cpu0" -v b="$cpu" 'BEGIN { printf "%.2f", b - a }')
}

# Writes `$work/ffmpeg-tee`: an ffmpeg that keeps a copy of the raw frames piped to it in `$1`
# (the render's encoder is the only ffmpeg call reading `-i -`). E must encode the exact frames P
# piped: frames decoded back from P's video would be the encoder's smoothed output, cheaper again.
make_tee() {
  cat > "$work/ffmpeg-tee" <<TEE
#!/usr/bin/env bash
if [[ " \$* " == *" -i - "* ]]; then tee "$1" | ffmpeg "\$@"; else exec ffmpeg "\$@"; fi
TEE
  chmod +x "$work/ffmpeg-tee"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
