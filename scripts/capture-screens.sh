#!/bin/sh
# Regenerate the pictures of the dashboard: the real dashboard on the built-in demo cluster in a
# tmux pane, captured with its colours (assets/dashboard.ansi, the terminal's escape codes) and as
# plain text (assets/dashboard.txt, assets/detail.txt: no escape codes), and the README's
# screenshot assets/dashboard.png rendered from the colour capture by scripts/screen-to-png.py.
# The demo's clock runs 4x (VMMEM_DEMO_SPEED) so memhold-vm is OOM-killed, restarts and heads for
# its next kill within a minute; the dashboard is captured while that VM is at risk again with its
# earlier kill counted, then its detail view. tests/it/readme_pictures.rs checks the results.
#
#   scripts/capture-screens.sh                      # builds the release binary first
#   scripts/capture-screens.sh path/to/kubectl-vmmem
#
# Needs tmux, python3 and Chromium (apt-get install -y tmux python3 chromium). Takes about a minute.
set -eu
cd "$(dirname "$0")/.."

for tool in tmux python3 chromium; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "capture-screens.sh: $tool is not installed (apt-get install -y $tool)" >&2
        exit 1
    fi
done
bin=${1:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin=target/release/kubectl-vmmem
fi
[ -x "$bin" ] || { echo "capture-screens.sh: $bin is not an executable" >&2; exit 1; }

sock="vmmem-capture-$$"
out=$(mktemp -d)
cleanup() {
    tmux -L "$sock" kill-server 2>/dev/null || true
    rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The dashboard's own size for the screenshot (tests/it/readme_pictures.rs takes a fresh capture at
# the size written into the PNG).
cols=160 rows=22
tmux -L "$sock" -f /dev/null new-session -d -x "$cols" -y "$rows" \
    "env -u NO_COLOR VMMEM_DEMO_SPEED=4 '$bin' top --demo --refresh 2s; sleep 30"
tmux -L "$sock" set-option -g escape-time 0 >/dev/null

esc=$(printf '\033')
# The pane with its colours (SGR escape codes) in $out/screen.ansi, and as plain text, trailing
# blanks removed, in $out/screen: both from one capture.
screen() {
    tmux -L "$sock" capture-pane -e -p -t 0 >"$out/screen.ansi"
    sed "s/${esc}\[[0-9;:]*m//g; s/[[:space:]]*\$//" "$out/screen.ansi"
}

keys() {
    for k in "$@"; do
        tmux -L "$sock" send-keys -t 0 "$k"
        sleep 0.2
    done
}

# wait_for WHAT SECONDS AWK-PROGRAM: until the program exits 0 on the screen.
wait_for() {
    what=$1 limit=$2 prog=$3
    tries=$((limit * 4))
    while [ "$tries" -gt 0 ]; do
        screen >"$out/screen"
        if awk "$prog" "$out/screen"; then
            return 0
        fi
        sleep 0.25
        tries=$((tries - 1))
    done
    echo "capture-screens.sh: timed out after ${limit}s waiting for $what; the screen:" >&2
    cat "$out/screen" >&2
    exit 1
}

# memhold-vm at warn or critical with at least one OOM kill in its OOMS column, read live again
# by its node's agent (not between its pods). (The OOMS cell is the one after the RISK cell: the
# usage bars make columns uneven in bytes.)
wait_for "memhold-vm at risk after an OOM kill" 240 '
    $2 == "memhold-vm" && $NF == "agent" {
        for (i = 3; i < NF; i++)
            if ($i ~ /^(warn|critical)\*?$/ && $(i + 1) + 0 >= 1) found = 1
    }
    END { exit !found }'
cp "$out/screen" "$out/dashboard.txt"
cp "$out/screen.ansi" "$out/dashboard.ansi"

tmux -L "$sock" resize-window -t 0 -x 160 -y 50
keys / m e m h o l d Enter Enter
wait_for "memhold-vm's detail view with its kill explained" 30 '
    /default\/memhold-vm  node/ { title = 1 }
    /VM default\/memhold-vm was OOM-killed at/ { verdict = 1 }
    END { exit !(title && verdict) }'
cp "$out/screen" "$out/detail.txt"
keys Escape q

# Nothing of this machine may end up in the pictures.
for f in "$out/dashboard.txt" "$out/detail.txt" "$out/dashboard.ansi"; do
    if grep -nE '/(work|tmp|root|home)/|https?://|[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+' "$f"; then
        echo "capture-screens.sh: $f shows something machine-specific (above)" >&2
        exit 1
    fi
done
mkdir -p assets
cp "$out/dashboard.txt" assets/dashboard.txt
cp "$out/detail.txt" assets/detail.txt
cp "$out/dashboard.ansi" assets/dashboard.ansi
python3 scripts/screen-to-png.py assets/dashboard.ansi "${cols}x${rows}" assets/dashboard.png

# docs/how-it-works.md shows each text picture in the fenced block after its
# `<!-- picture: FILE -->` marker.
doc=docs/how-it-works.md
awk '
    /^<!-- picture: .* -->$/ { file = $3; print; next }
    file != "" && /^```text$/ { print; while ((getline line < file) > 0) print line; close(file); skip = 1; next }
    skip && /^```$/ { skip = 0; file = ""; print; next }
    !skip { print }
' "$doc" > "$out/doc.md"
cp "$out/doc.md" "$doc"
echo "wrote assets/dashboard.png (the README's screenshot), assets/dashboard.ansi, assets/dashboard.txt and assets/detail.txt, and put the text pictures into $doc"
