#!/usr/bin/env bash
# Regenerates screenshots/*.png from a real `autovolt demo` run: tmux runs the dashboard, the
# script drives it with keys, `tmux capture-pane -e` keeps the colours, aha turns the capture into
# HTML and headless Chromium renders it to PNG. Installs tmux, aha and Chromium if missing (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
if ! have tmux || ! have aha || ! { have chromium || have chromium-browser; }; then
    echo "installing tmux, aha and chromium…" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux aha chromium fonts-dejavu-core >/dev/null
fi
CHROME=$(command -v chromium || command -v chromium-browser)

cargo build --release --quiet
BIN=$PWD/target/release/autovolt
OUT=$PWD/screenshots
mkdir -p "$OUT"
WORK=$(mktemp -d)
SESSION=autovolt-shots-$$
COLS=140
ROWS=40
cleanup() {
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A fresh demo campus in a state directory of its own.
tmux new-session -d -s "$SESSION" -x "$COLS" -y "$ROWS" \
    "env LANG=C.UTF-8 TERM=xterm-256color USER=technician XDG_STATE_HOME=$WORK/state $BIN demo 2>$WORK/demo.err"

screen() { tmux capture-pane -p -t "$SESSION"; }
wait_for() {
    for _ in $(seq 1 240); do
        if screen | grep -q -- "$1"; then return 0; fi
        sleep 0.5
    done
    echo "timed out waiting for: $1" >&2
    screen >&2
    cat "$WORK/demo.err" >&2
    exit 1
}
keys() { tmux send-keys -t "$SESSION" "$@"; sleep 0.6; }
shot() {
    sleep 1.5
    tmux capture-pane -e -p -t "$SESSION" >"$WORK/$1.ansi"
    aha --black --title "AutoVolt: $1" <"$WORK/$1.ansi" >"$WORK/$1.html"
    sed -i 's|<pre>|<pre style="font-family: '"'"'DejaVu Sans Mono'"'"', monospace; font-size: 14px; line-height: 17px; margin: 6px;">|' "$WORK/$1.html"
    "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size=1200,700 --screenshot="$OUT/$1.png" "file://$WORK/$1.html" >/dev/null 2>&1
    echo "screenshots/$1.png" >&2
}

wait_for "MQTT ● live"
wait_for "Classrooms (12)"
# Every board heard (the first screen may come before the collector has marked them online).
wait_until_gone() {
    for _ in $(seq 1 240); do
        if ! screen | grep -q -E -- "$1"; then return 0; fi
        sleep 0.5
    done
    echo "timed out waiting for the screen to lose: $1" >&2
    screen >&2
    exit 1
}
wait_for "2/2"
wait_until_gone " [01]/2 "
sleep 3

# Switch some loads on through the dashboard itself (commands acknowledged by the simulated boards).
keys s s s             # sort by name
keys Enter
keys Space j Space j j Space j j j Space
sleep 3
shot classroom
# Escape on its own: followed at once by a key, a terminal reads it as Alt+key.
keys Escape
keys j j j Enter
keys Space j j Space j j j j j j Space
sleep 3
keys Escape
keys j j j j j j Enter
keys j j Space j j j j Space
sleep 3
keys Escape
keys s                 # sort by cost
shot classrooms
keys w
shot waste
keys H
shot health
keys v
shot activity
keys r
keys e
keys BSpace BSpace BSpace BSpace
keys 8 . 2 5
shot tariff-edit
keys Escape
keys c
keys T
wait_for "Top rooms by"
shot trends
keys Escape
keys '?'
shot help
keys Escape
keys t
shot classrooms-light
keys q
sleep 3
