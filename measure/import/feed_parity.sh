#!/usr/bin/env bash
# P@10 by articleType over the four sample feeds vs the same photos as a Kaggle-style import
# with the feeds' groups (the query's own group dropped from results, as look-alikes do) and as
# a plain import without groups, as a Kaggle styles.csv has none (issue 40): run after the test
# suite, one process at a time.
set -eu
#   measure/import/feed_parity.sh [SHARED_DATA_DIR]
here=$(cd "$(dirname "$0")" && pwd)
DATA=${1:-$here/../../../shared/data}
LB=${LOOKBOOK:-$here/../../target/debug/lookbook}
S=$DATA/shop-feeds
work=${KEEP:-$(mktemp -d)}; [ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
cd "$work"
export XDG_DATA_HOME=$work/xdg DATA
for f in shopify/products_export.csv google/feed.tsv google/feed.xml woocommerce/wc-product-export.csv; do
  $LB --db shop.db import --metadata $S/$f --images $S/cdn >/dev/null 2>&1 || true
done
$LB --db shop.db import --metadata $S/hm/articles.csv --images $S/hm >/dev/null 2>&1 || true
$LB --db shop.db embed >/dev/null 2>&1
# The Kaggle-style twin: truth.csv's photos from fashion-products, grouped as in the feeds.
python3 - <<'PY'
import csv, os
rows = list(csv.DictReader(open(os.environ["DATA"] + "/shop-feeds/truth.csv")))
styles = {r["id"]: r for r in csv.DictReader(open(os.environ["DATA"] + "/fashion-products/styles.csv"))}
with open("kag.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "name", "image", "category", "group", "colour"])
    seen = set()
    for r in rows:
        key = r["format"] + ":" + r["source_id"]
        if key in seen: continue
        seen.add(key)
        s = styles.get(r["source_id"], {})
        w.writerow([key, s.get("productDisplayName", ""), r["source_id"] + ".jpg",
                    (s.get("masterCategory","") + " > " + s.get("subCategory","") + " > " + r["articleType"]),
                    r["format"] + ":" + r["group"], r["colour"]])
PY
$LB --db kag.db import --metadata kag.csv --images "$DATA/fashion-products/images" \
  --map id=id --map name=name --map image=image --map category=category --map group=group --map colour=colour >/dev/null 2>&1 || true
$LB --db kag.db embed >/dev/null 2>&1
$LB --db plain.db import --metadata kag.csv --images "$DATA/fashion-products/images" \
  --map id=id --map name=name --map image=image --map category=category --map colour=colour >/dev/null 2>&1 || true
$LB --db plain.db embed >/dev/null 2>&1
python3 - <<'PY'
import sqlite3
for db in ["shop", "kag", "plain"]:
    c = sqlite3.connect(f"{db}.db")
    ids = [r[0] for r in c.execute("select p.id from products p join embeddings e on e.product_id = p.id")]
    open(f"ids_{db}.txt", "w").write("\n".join(map(str, ids)) + "\n")
    n_types = c.execute("select count(distinct a.name) from products p join categories a on a.id = p.category_id").fetchone()[0]
    print(db, len(ids), "products with vectors,", n_types, "types")
PY
for db in shop kag plain; do
  echo "== $db"; $LB --db $db.db eval --no-baselines --queries ids_$db.txt 2>/dev/null | head -8
done
