#!/usr/bin/env bash
# Import benchmark (issue 20): 50,000 products whose photos come from a loopback CDN (the 1,200
# shop-feeds photos under distinct URLs), imported twice; prints time, CPU and peak memory.
#   measure/import/run.sh [SHOP_FEEDS_DIR] [PRODUCTS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
feeds=${1:-$here/../../../shared/data/shop-feeds}
n=${2:-50000}
lb=${LOOKBOOK:-$here/../../target/debug/lookbook}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$here/cdn_server.py" "$feeds/cdn" "$port" & server=$!
trap 'kill $server; rm -rf "$work"' EXIT
sleep 1
python3 "$here/make_feed.py" "$feeds/cdn" "$port" "$n" > "$work/feed.tsv"
for run in first second; do
  /usr/bin/time -f "$run import: %e s, %P CPU, peak %M KB" "$lb" --db "$work/b.db" import --metadata "$work/feed.tsv" --allow-hosts "127.0.0.1:$port" --json \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print({k: r[k] for k in ("inserted", "updated", "unchanged")}, len(r["skipped"]), "skipped")'
done
