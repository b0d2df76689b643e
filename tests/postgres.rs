//! PostgreSQL with pgvector (issue 12): `lookbook migrate` both ways, row for row, and search in
//! the database. Each test works in a database of its own on the server named by
//! `LOOKBOOK_TEST_POSTGRES` (`.ci/run` starts one and sets it); without it the tests say so and
//! pass, so `cargo test` still runs on a machine with no PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use lookbook::catalog::Catalog;
use lookbook::catalog::postgres as pg;
use lookbook::recommend::{FlatIndex, VectorIndex};
use predicates::prelude::PredicateBooleanExt;
use rusqlite::types::Value;

/// A fresh database on the test server, dropped at the end.
struct TestDb {
    admin: String,
    name: String,
    url: String,
}

impl TestDb {
    fn new(tag: &str) -> Option<Self> {
        let Ok(admin) = std::env::var("LOOKBOOK_TEST_POSTGRES") else {
            eprintln!("skipped: LOOKBOOK_TEST_POSTGRES is not set (.ci/run starts a PostgreSQL and sets it)");
            return None;
        };
        let name = format!("lookbook_{tag}_{}", std::process::id());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("the test PostgreSQL");
        // Two statements: CREATE DATABASE cannot run inside the transaction a batch makes.
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = with_database(&admin, &name);
        Some(TestDb { admin, name, url })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// `postgres://user@host/db?params` with another database name.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let slash = base.rfind('/').unwrap();
    let mut out = format!("{}/{db}", &base[..slash]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The fixture, embedded, copied into a fresh database of its own.
fn migrated(tag: &str) -> Option<(TestDb, Fixture)> {
    let pg = TestDb::new(tag)?;
    let f = Fixture::mini();
    f.ready();
    f.cmd(&["migrate", "--to", &pg.url]).assert().success();
    Some((pg, f))
}

/// The in-memory exact top 10 look-alikes of the product in `flat`'s row `row`, and the top 10
/// the database finds by each of `methods`.
fn look_alikes(
    c: &mut postgres::Client,
    model_id: i64,
    dim: usize,
    flat: &FlatIndex,
    row: usize,
    methods: &[pg::Method],
) -> (Vec<i64>, Vec<Vec<i64>>) {
    let q = flat.vector(row).to_vec();
    let id = flat.id(row);
    let want = flat
        .search(&q, 10, &|r| r != row)
        .iter()
        .map(|&(r, _)| flat.id(r))
        .collect();
    let got = methods
        .iter()
        .map(|&method| {
            let s = pg::Search {
                model_id,
                dim: dim as i64,
                k: 10,
                exclude: &[id],
                filter: None,
                method,
            };
            pg::search(c, &q, &s).unwrap().into_iter().map(|x| x.0).collect()
        })
        .collect();
    (want, got)
}

/// `lookbook --db URL args...`, with the fixture's weights.
fn on_pg(f: &Fixture, url: &str, args: &[&str]) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("lookbook").unwrap();
    c.env("LOOKBOOK_WEIGHTS", f.weights()).arg("--db").arg(url).args(args);
    c
}

/// Every row of every table, in key order, as SQLite values.
fn dump(db: &std::path::Path) -> Vec<(String, Vec<Vec<Value>>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables = [
        ("settings", "key"),
        ("categories", "id"),
        ("products", "id"),
        ("variants", "product_id, sku"),
        ("users", "id"),
        ("models", "id"),
        ("heads", "id"),
        ("feedback", "user_id, product_id"),
        ("embeddings", "model_id, product_id"),
    ];
    tables
        .iter()
        .map(|(t, key)| {
            let mut st = conn.prepare(&format!("SELECT * FROM {t} ORDER BY {key}")).unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| {
                    (0..n).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>()
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            (t.to_string(), rows)
        })
        .collect()
}

/// The fixture with vectors, a trained head, users, likes and a dislike: every table has rows.
fn full_fixture() -> Fixture {
    let f = Fixture::mini();
    f.ready();
    f.cmd(&["train", "--epochs", "3", "--force"]).assert().success();
    let ids = f.ids();
    f.cmd(&["like", "--user", "ana", &ids[0].to_string(), &ids[3].to_string()])
        .assert()
        .success();
    f.cmd(&["dislike", "--user", "ana", &ids[5].to_string()])
        .assert()
        .success();
    f.cmd(&["like", "--user", "bo", &ids[1].to_string()]).assert().success();
    f
}

#[test]
fn a_shops_ids_groups_prices_and_variants_cross_to_postgres_and_back() {
    let Some(pg) = TestDb::new("shop") else { return };
    let f = Fixture::mini();
    let shop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop");
    f.cmd(&["import", "--metadata"])
        .arg(shop.join("shopify_products_export.csv"))
        .arg("--images")
        .arg(shop.join("cdn"))
        .assert()
        .code(predicates::ord::eq(0).or(predicates::ord::eq(3)));
    f.cmd(&["like", "--user", "ana", "MOTHER-EARTH-12768-S"])
        .assert()
        .success();
    let back = f.path("back.db");
    f.cmd(&["migrate", "--to", &pg.url]).assert().success();
    f.cmd(&["migrate", "--from", &pg.url, "--to", back.to_str().unwrap()])
        .assert()
        .success();
    let (a, b) = (dump(&f.db()), dump(&back));
    let variants = a.iter().find(|(t, _)| t == "variants").unwrap();
    assert!(variants.1.len() > 10, "the fixture has sizes");
    assert_eq!(a, b, "round trip row for row");
    // In PostgreSQL the shop's ids answer as in the file.
    let out = on_pg(&f, &pg.url, &["show", "MOTHER-EARTH-12768-M", "--width", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn migrate_round_trip_is_identical_and_refuses_to_overwrite() {
    let Some(pg) = TestDb::new("roundtrip") else { return };
    let f = full_fixture();
    let back = f.path("back.db");
    let out = f.cmd(&["migrate", "--to", &pg.url, "--json"]).assert().success();
    let copied = common::json(&out.get_output().stdout);
    let rows = |t: &str| {
        copied["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x[0] == t)
            .map(|x| x[1].as_u64().unwrap())
            .unwrap()
    };
    assert_eq!(rows("products"), f.ids().len() as u64);
    assert!(rows("heads") >= 1 && rows("feedback") == 4 && rows("embeddings") > rows("products"));

    f.cmd(&["migrate", "--from", &pg.url, "--to", back.to_str().unwrap()])
        .assert()
        .success();
    let (a, mut b) = (dump(&f.db()), dump(&back));
    // The copy's image root is made absolute (the copy may live elsewhere); all else is equal.
    let abs = f.images().canonicalize().unwrap();
    for (t, rows) in &mut b {
        if t == "settings" {
            for r in rows.iter_mut() {
                if r[0] == Value::Text("image_root".into()) {
                    assert_eq!(r[1], Value::Text(abs.to_string_lossy().into_owned()));
                    r[1] = Value::Text("images".into());
                }
            }
        }
    }
    let a_root: Vec<_> = a[0]
        .1
        .iter()
        .filter(|r| r[0] == Value::Text("image_root".into()))
        .collect();
    assert_eq!(
        a_root[0][1],
        Value::Text("images".into()),
        "the fixture's root is relative"
    );
    assert_eq!(a, b, "round trip row for row");

    // The copy is a working catalogue.
    let back_s = back.to_str().unwrap();
    let id = f.ids()[2].to_string();
    assert_cmd::Command::cargo_bin("lookbook")
        .unwrap()
        .env("LOOKBOOK_WEIGHTS", f.weights())
        .args(["--db", back_s, "similar", &id, "-k", "3"])
        .assert()
        .success();

    // Neither direction overwrites anything.
    let again = f.cmd(&["migrate", "--to", &pg.url]).assert().failure();
    let err = String::from_utf8_lossy(&again.get_output().stderr).into_owned();
    assert!(err.contains("already holds a lookbook catalogue"), "{err}");
    let sum = std::fs::read(&back).unwrap();
    let again = f
        .cmd(&["migrate", "--from", &pg.url, "--to", back_s])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&again.get_output().stderr).into_owned();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&back).unwrap(), sum);
}

#[test]
fn foreign_and_empty_databases_are_refused_with_a_clear_message() {
    let Some(pg) = TestDb::new("foreign") else { return };
    let f = Fixture::mini();
    f.ready();
    let mut c = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    c.batch_execute("CREATE TABLE invoices (id INT)").unwrap();
    let out = f.cmd(&["migrate", "--to", &pg.url]).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("another program's tables (invoices)"), "{err}");
    let left: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 1, "nothing was created beside it");

    // A command on that database refuses it the same way, and never makes a file "postgres:".
    let out = assert_cmd::Command::cargo_bin("lookbook")
        .unwrap()
        .current_dir(f.path(""))
        .args(["--db", &pg.url, "users"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("another program's tables (invoices)"), "{err}");
    assert!(!f.path("postgres:").exists());
    c.batch_execute("DROP TABLE invoices").unwrap();
    let out = assert_cmd::Command::cargo_bin("lookbook")
        .unwrap()
        .args(["--db", &pg.url, "users"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("holds no lookbook catalogue yet") && err.contains("migrate --to"),
        "{err}"
    );
    let out = f
        .cmd(&["migrate", "--to", "postgres://nobody@127.0.0.1:1/x"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
}

#[test]
fn exact_search_in_postgres_matches_the_flat_index_and_hnsw_finds_the_same() {
    let Some((pg, f)) = migrated("search") else { return };
    let cat = Catalog::open_existing(f.db()).unwrap();
    let model = cat.active_model().unwrap().unwrap();
    let flat = FlatIndex::new(cat.load_embeddings(model.id).unwrap());
    let mut c = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    let (mut same, mut hits) = (0, 0);
    for row in 0..flat.len() {
        let methods = [pg::Method::Exact, pg::Method::Hnsw { ef_search: 40 }];
        let (want, got) = look_alikes(&mut c, model.id, model.spec.dim, &flat, row, &methods);
        // pgvector sums in another order than our kernel, so two nearly equal cosines may
        // swap places: exact search must give, rank by rank, the cosine the flat index gives.
        let q = flat.vector(row);
        let cosine = |id: i64| {
            let v = flat.vector(flat.row(id).unwrap());
            q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>()
        };
        assert_eq!(got[0].len(), want.len(), "query {row}");
        for (rank, (&g, &w)) in got[0].iter().zip(&want).enumerate() {
            let (g, w) = (cosine(g), cosine(w));
            assert!(
                (g - w).abs() <= 1e-5,
                "query {row} rank {rank}: pgvector's cosine {g}, flat's {w}"
            );
        }
        same += usize::from(got[0] == want);
        hits += got[1].iter().filter(|id| want.contains(id)).count();
    }
    // Most queries have no near tie at all: the same ids in the same order.
    assert!(
        same * 5 >= flat.len() * 4,
        "exact top-10 equal for {same} of {}",
        flat.len()
    );
    let recall = hits as f64 / (10 * flat.len()) as f64;
    assert!(recall >= 0.98, "HNSW recall@10 {recall}");
}

#[test]
fn commands_and_two_servers_share_one_catalogue_in_postgres() {
    use common::ssh::{app_session, connect, read_until, start_on};
    use std::time::{Duration, Instant};
    let Some((pg, f)) = migrated("serve") else { return };
    let on_pg = |args: &[&str]| on_pg(&f, &pg.url, args);
    // The commands that read and like work on the copy in PostgreSQL.
    let ids = f.ids();
    let id = ids[4].to_string();
    on_pg(&["similar", &id, "-k", "3"]).assert().success();
    on_pg(&["like", "--user", "cy", &id]).assert().success();
    let out = on_pg(&["likes", "--user", "cy", "--json"]).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains(&id));
    on_pg(&["recommend", "--user", "cy", "-k", "3"]).assert().success();
    // Embedding finds nothing to do.
    let out = on_pg(&["embed"]).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("48 already up to date"));

    // Two servers on the one database: ana likes through A, and her open feed on B shows it.
    let a = start_on(&f, std::ffi::OsStr::new(&pg.url), "a");
    let b = start_on(&f, std::ffi::OsStr::new(&pg.url), "b");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (on_b, ok) = connect(b.port, "ana", 1).await;
        assert!(ok);
        let mut feed = app_session(&on_b, 110, 30).await;
        let _ = read_until(&mut feed, 30, |s| s.contains("Browse")).await;
        feed.data_bytes(b"3".to_vec()).await.unwrap();
        let before = read_until(&mut feed, 10, |s| s.contains("For you")).await;
        assert!(!before.contains("because you liked"), "no likes yet");

        let (on_a, ok) = connect(a.port, "ana", 1).await;
        assert!(ok);
        let mut ch = app_session(&on_a, 110, 30).await;
        let _ = read_until(&mut ch, 30, |s| s.contains("Browse")).await;
        // Give the session a moment to take the shared engine before liking.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        ch.data_bytes(b"l".to_vec()).await.unwrap();
        let liked = read_until(&mut ch, 30, |s| s.contains("liked")).await;
        assert!(liked.contains("liked"), "the like through A");
        let t = Instant::now();
        let after = read_until(&mut feed, 30, |s| s.contains("because you liked")).await;
        assert!(after.contains("because you liked"), "B's feed never showed A's like");
        // The session re-reads its user's likes every second; the margin is for a loaded CI
        // machine running the other tests beside this one.
        assert!(t.elapsed() < Duration::from_secs(4), "took {:?}", t.elapsed());
        eprintln!("A's like reached B's open feed in {:?}", t.elapsed());
    });
    drop((a, b));
}

#[test]
fn three_embed_workers_one_killed_embed_every_product_exactly_once() {
    use std::process::{Command, Stdio};
    let Some(pg) = TestDb::new("workers") else { return };
    let f = Fixture::mini();
    f.import();
    f.cmd(&["migrate", "--to", &pg.url]).assert().success();
    let worker = || {
        Command::new(env!("CARGO_BIN_EXE_lookbook"))
            .env("LOOKBOOK_WEIGHTS", f.weights())
            .args(["--db", &pg.url, "embed", "--batch", "2", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut workers: Vec<_> = (0..3).map(|_| worker()).collect();
    // Kill one once it has committed at least one batch, or after a bounded wait.
    let victim = workers.remove(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut c = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    while std::time::Instant::now() < deadline {
        let n: i64 = c.query_one("SELECT COUNT(*) FROM embeddings", &[]).unwrap().get(0);
        if n >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut victim = victim;
    victim.kill().unwrap(); // SIGKILL: no cleanup, its open transaction dies with its connection
    let killed = victim.wait_with_output().unwrap();
    let committed_by_victim: usize = String::from_utf8_lossy(&killed.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("committed ")?.split(' ').next()?.parse::<usize>().ok())
        .sum();
    let mut committed_by_others = 0;
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report = common::json(&out.stdout);
        committed_by_others += report["embedded"].as_u64().unwrap() as usize;
    }
    let products = f.ids().len();
    eprintln!("the killed worker committed {committed_by_victim}, the others {committed_by_others}");
    let rows: i64 = c.query_one("SELECT COUNT(*) FROM embeddings", &[]).unwrap().get(0);
    assert_eq!(rows as usize, products, "every product has a vector");
    // Each vector was committed once: a product embedded twice would be counted twice.
    assert_eq!(
        committed_by_victim + committed_by_others,
        products,
        "victim {committed_by_victim}, others {committed_by_others}"
    );
    // And the catalogue works from PostgreSQL.
    let out = assert_cmd::Command::cargo_bin("lookbook")
        .unwrap()
        .env("LOOKBOOK_WEIGHTS", f.weights())
        .args(["--db", &pg.url, "similar", &f.ids()[0].to_string(), "-k", "3"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("Look-alikes"));
}

#[test]
fn import_embed_and_train_in_postgres_give_what_sqlite_gives() {
    let Some(pg) = TestDb::new("write") else { return };
    let f = Fixture::mini();
    let on_pg = |args: &[&str]| on_pg(&f, &pg.url, args);
    let (images, csv) = (f.images(), f.csv());
    let import = [
        "import",
        "--images",
        images.to_str().unwrap(),
        "--metadata",
        csv.to_str().unwrap(),
    ];
    let out = on_pg(&import).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("48 new"));
    let out = on_pg(&import).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("48 unchanged"));
    on_pg(&["embed", "--batch", "8"]).assert().success();
    f.ready();
    let id = f.ids()[6].to_string();
    let similar = |out: &[u8]| -> Vec<i64> {
        common::json(out)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };
    let pg_ids = similar(
        &on_pg(&["similar", &id, "-k", "5", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    );
    let lite_ids = similar(
        &f.cmd(&["similar", &id, "-k", "5", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    );
    assert_eq!(pg_ids, lite_ids, "the same vectors rank the same in both");
    on_pg(&["train", "--epochs", "3", "--force"]).assert().success();
    let out = on_pg(&["model", "info"]).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("head"));
    on_pg(&["similar", &id, "-k", "5"]).assert().success();
}

#[test]
fn the_engine_ranks_the_same_through_pgvector_as_in_memory() {
    use lookbook::catalog::ProductFilter;
    use lookbook::catalog::postgres::Method;
    use lookbook::recommend::{Engine, PgIndex, Profile, ProfileSettings, Request};
    let Some((pg, f)) = migrated("index") else { return };
    let cat = Catalog::open_existing(f.db()).unwrap();
    let model = cat.active_model().unwrap().unwrap();
    let matrix = cat.load_embeddings(model.id).unwrap();
    let products = cat.products().unwrap();
    let memory = Engine::new(products.clone(), FlatIndex::new(matrix.clone()));
    let exact = Engine::new(
        products.clone(),
        PgIndex::connect(&pg.url, matrix.clone(), Method::Exact).unwrap(),
    );
    let hnsw = Engine::new(
        products.clone(),
        PgIndex::connect(&pg.url, matrix, Method::Hnsw { ef_search: 40 }).unwrap(),
    );
    let ids = f.ids();
    let feedback: Vec<lookbook::catalog::Feedback> = [ids[1], ids[9], ids[17]]
        .iter()
        .enumerate()
        .map(|(i, &id)| lookbook::catalog::Feedback {
            product_id: id,
            weight: if i == 2 { -1.0 } else { 1.0 },
            at: i as i64,
        })
        .collect();
    let colour = products[3].colour.clone();
    let kind = products[5].sub_category.clone();
    let filters = [
        ProductFilter::default(),
        ProductFilter {
            colour: Some(colour.to_uppercase()),
            ..Default::default()
        },
        ProductFilter {
            category: Some(kind),
            ..Default::default()
        },
    ];
    let (mut hits, mut total) = (0, 0);
    for filter in &filters {
        for &item in ids.iter().step_by(7) {
            let req = Request {
                item: Some(item),
                filter: filter.clone(),
                k: 10,
                ..Default::default()
            };
            let p = Profile::build(&feedback, memory.index(), ProfileSettings::default());
            let rank = |e: &Engine| -> Vec<i64> {
                let p = Profile::build(&feedback, e.index(), ProfileSettings::default());
                e.recommend(&p, &req).unwrap().into_iter().map(|r| r.id).collect()
            };
            let scored = memory.recommend(&p, &req).unwrap();
            let want: Vec<i64> = scored.iter().map(|r| r.id).collect();
            // Exact search in PostgreSQL gives the same list; two neighbours may trade places
            // only where their scores tie to within float rounding (pgvector sums in another
            // order, and an expanded query makes near-ties likelier).
            let got = rank(&exact);
            assert_eq!(got.len(), want.len(), "exact search in PostgreSQL, filter {filter:?}");
            let score = |id: i64| scored.iter().find(|r| r.id == id).map(|r| r.score);
            for (i, (g, w)) in got.iter().zip(&scored).enumerate() {
                let tied = score(*g).is_some_and(|s| (s - w.score).abs() < 1e-5);
                assert!(
                    *g == w.id || tied,
                    "exact search in PostgreSQL, filter {filter:?}, place {i}: {got:?} against {want:?}"
                );
            }
            let got = rank(&hnsw);
            assert!(got.iter().all(|id| !feedback.iter().any(|f| f.product_id == *id)));
            hits += got.iter().filter(|id| want.contains(id)).count();
            total += want.len();
        }
    }
    assert!(
        hits as f64 >= 0.9 * total as f64,
        "HNSW through the engine: {hits} of {total}"
    );
}

/// A PostgreSQL of this test's own (restarted by it), made by `.ci/postgres` with a password.
struct OwnServer {
    env: Vec<(String, String)>,
    url: String,
}

impl OwnServer {
    fn start(password: &str) -> Option<Self> {
        if std::env::var("LOOKBOOK_PG_BIN").is_err() {
            eprintln!("skipped: LOOKBOOK_PG_BIN is not set (.ci/run starts PostgreSQL with .ci/postgres)");
            return None;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg("start")
            .env("LOOKBOOK_PG_PASSWORD", password)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut env = Vec::new();
        let mut url = String::new();
        for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Some((k, v)) = word.split_once('=') {
                let v = v.trim_matches('\'').to_string();
                if k == "LOOKBOOK_TEST_POSTGRES" {
                    url = v;
                } else if k.starts_with("LOOKBOOK_PG_") {
                    env.push((k.to_string(), v));
                }
            }
        }
        Some(OwnServer { env, url })
    }

    fn ctl(&self, what: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
        let st = std::process::Command::new("bash")
            .arg(script)
            .arg(what)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status()
            .unwrap();
        assert!(st.success(), ".ci/postgres {what}");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.ctl("stop");
    }
}

#[test]
fn connection_errors_say_which_and_never_print_the_password() {
    let Some(db) = TestDb::new("errors") else { return };
    let f = Fixture::mini();
    let stderr = |url: &str| {
        let out = on_pg(&f, url, &["users"]).output().unwrap();
        assert!(!out.status.success(), "{url}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = with_database(&db.url, "no_such_database_here");
    let e = stderr(&missing);
    assert!(e.contains("database \"no_such_database_here\" does not exist"), "{e}");
    let role = db.url.replacen("lookbook@", "nobody_by_this_name@", 1);
    let e = stderr(&role);
    assert!(e.contains("role \"nobody_by_this_name\" does not exist"), "{e}");
    let Some(own) = OwnServer::start("s3cretPW") else {
        return;
    };
    let wrong = own.url.replacen("s3cretPW", "hunter2", 1);
    let e = stderr(&wrong);
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn serve_comes_back_after_a_postgres_restart_and_refuses_likes_while_it_is_away() {
    use common::ssh::{app_session, connect, read_until, start_on};
    use std::time::{Duration, Instant};
    let Some(own) = OwnServer::start("s3cretPW") else {
        return;
    };
    let f = Fixture::mini();
    f.ready();
    f.cmd(&["migrate", "--to", &own.url]).assert().success();
    let server = start_on(&f, std::ffi::OsStr::new(&own.url), "pg");
    assert!(
        !server.log().contains("s3cretPW"),
        "the log names the password: {}",
        server.log()
    );
    // The synchronous client runs a runtime of its own: off the test's async threads.
    let likes = |user: &str| -> usize {
        tokio::task::block_in_place(|| {
            let cat = Catalog::open(&own.url).unwrap();
            cat.user_id(user).unwrap().map_or(0, |u| cat.feedback(u).unwrap().len())
        })
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (ana, ok) = connect(server.port, "ana", 1).await;
        assert!(ok);
        let mut ch = app_session(&ana, 120, 40).await;
        let _ = read_until(&mut ch, 30, |s| s.contains("Browse")).await;
        ch.data_bytes(b"jl".to_vec()).await.unwrap();
        let _ = read_until(&mut ch, 10, |s| s.contains("liked")).await;
        tokio::task::block_in_place(|| own.ctl("pause"));
        // While the database is away: the session stays, says so, and confirms no like.
        ch.data_bytes(b"jl".to_vec()).await.unwrap();
        let away = read_until(&mut ch, 15, |s| s.contains("cannot reach") || s.contains("closed")).await;
        assert!(away.contains("cannot reach") || away.contains("closed"), "{away:?}");
        assert!(
            !away.contains("liked "),
            "a like was confirmed while the database was away: {away:?}"
        );
        tokio::task::block_in_place(|| own.ctl("resume"));
        // Back: the same session likes again, and a new session starts.
        let deadline = Instant::now() + Duration::from_secs(30);
        while likes("ana") < 2 && Instant::now() < deadline {
            ch.data_bytes(b"jl".to_vec()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        assert!(likes("ana") >= 2, "likes are saved again after the restart");
        let (bob, ok) = connect(server.port, "bob", 1).await;
        assert!(ok);
        let mut ch2 = app_session(&bob, 100, 30).await;
        let frame = read_until(&mut ch2, 30, |s| s.contains("Browse")).await;
        assert!(frame.contains("Browse"), "a new session after the restart: {frame:?}");
    });
    assert!(!server.log().contains("s3cretPW"), "{}", server.log());
}

#[test]
fn a_version_1_catalogue_in_postgres_moves_forward_when_opened() {
    let Some(db) = TestDb::new("upgrade") else { return };
    let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "{}
         INSERT INTO lookbook_meta VALUES ('schema_version', '1'), ('application', 'lookbook');
         INSERT INTO categories(id, parent_id, name, level) VALUES (1, NULL, 'Apparel', 0), (2, 1, 'Topwear', 1), (3, 2, 'Tshirts', 2);
         INSERT INTO products VALUES (7, 'Old Tee', 3, 'Men', 'Red', 'Fall', 2011, 'Casual', '7.jpg', 'h', 1, 1);
         INSERT INTO users(id, name, created_at) VALUES (1, 'ana', 1);
         INSERT INTO feedback VALUES (1, 7, 1.0, 1);",
        include_str!("fixtures/schema-v1-postgres.sql")
    ))
    .unwrap();
    let f = Fixture::mini();
    let out = on_pg(&f, &db.url, &["likes", "--user", "ana", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Old Tee"),
        "the like is kept"
    );
    let version: String = c
        .query_one("SELECT value FROM lookbook_meta WHERE key = 'schema_version'", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, lookbook::catalog::SCHEMA_VERSION.to_string());
    let row = c
        .query_one("SELECT availability, listed, shop_id FROM products WHERE id = 7", &[])
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "unknown");
    assert_eq!(row.get::<_, i64>(1), 1);
    assert_eq!(row.get::<_, Option<String>>(2), None);
    let n: i64 = c.query_one("SELECT COUNT(*) FROM variants", &[]).unwrap().get(0);
    assert_eq!(n, 0, "the variants table exists");
}

#[test]
fn a_large_copy_gets_ivfflat_which_finds_the_exact_neighbours_and_stays() {
    // Issue 22: HNSW at 10^6 took 28 minutes to build, so `migrate` builds IVFFlat for large
    // models; here forced on a small synthetic catalogue of five lists.
    let Some(ivf) = TestDb::new("ivfflat") else { return };
    let Some(auto) = TestDb::new("ivfauto") else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("syn.db");
    lookbook::synthetic::write_synthetic_catalog(&db, 5000, 64, 3).unwrap();
    let migrate = |url: &str, index: &str| {
        let mut c = assert_cmd::Command::cargo_bin("lookbook").unwrap();
        c.arg("--db")
            .arg(&db)
            .args(["migrate", "--to", url, "--index", index])
            .assert()
            .success();
    };
    migrate(&ivf.url, "ivfflat");
    migrate(&auto.url, "auto");
    let cat = Catalog::open_existing(&ivf.url).unwrap();
    let model = cat.active_model().unwrap().unwrap();
    let flat = FlatIndex::new(cat.load_embeddings(model.id).unwrap());
    let mut c = postgres::Client::connect(&ivf.url, postgres::NoTls).unwrap();
    assert_eq!(
        pg::model_index(&mut c, model.id).unwrap(),
        Some(pg::ModelIndex::IvfFlat { lists: 5 })
    );
    let mut a = postgres::Client::connect(&auto.url, postgres::NoTls).unwrap();
    assert_eq!(pg::model_index(&mut a, model.id).unwrap(), Some(pg::ModelIndex::Hnsw));
    let default = pg::Method::for_index(Some(pg::ModelIndex::IvfFlat { lists: 5 }));
    assert_eq!(default, pg::Method::IvfFlat { probes: 3 });
    let (mut same, mut hits, mut queries) = (0, 0, 0);
    for row in (0..flat.len()).step_by(50) {
        // Every list read is an exact search through the index.
        let methods = [pg::Method::IvfFlat { probes: 5 }, default];
        let (want, got) = look_alikes(&mut c, model.id, 64, &flat, row, &methods);
        same += usize::from(got[0] == want);
        hits += got[1].iter().filter(|id| want.contains(id)).count();
        queries += 1;
    }
    assert!(
        same * 20 >= queries * 19,
        "all lists: top-10 equal for {same} of {queries}"
    );
    let recall = hits as f64 / (10 * queries) as f64;
    assert!(recall >= 0.9, "IVFFlat recall@10 at the default probes {recall}");
    // The planner really reads the index.
    let plan: Vec<String> = c
        .query(
            &format!(
                "EXPLAIN SELECT product_id FROM embeddings e WHERE e.model_id = {} ORDER BY {} <=> $1::vector(64) LIMIT 10",
                model.id,
                pg::index_expr(64).replace("vector::", "e.vector::")
            ),
            &[&pgvector::Vector::from(flat.vector(0).to_vec())],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(plan.iter().any(|l| l.contains("embeddings_ivfflat_")), "{plan:?}");
    // A later command that registers the model (embed, similar) leaves the index as it is.
    cat.register_model(&model.spec).unwrap();
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'embeddings_hnsw_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "an IVFFlat model gained an HNSW index");
}

#[test]
fn a_shops_history_feeds_the_same_in_postgres_as_in_sqlite() {
    let Some((pg, f)) = migrated("history") else { return };
    let file = common::shop_history::history(&f);
    let file = file.to_str().unwrap();
    let stdout = |c: &mut assert_cmd::Command| c.assert().success().get_output().stdout.clone();
    let first = common::json(&stdout(&mut on_pg(
        &f,
        &pg.url,
        &["import", "--interactions", file, "--json"],
    )));
    assert!(first["interactions"]["events"].as_u64().unwrap() > 40, "{first}");
    let again = common::json(&stdout(&mut on_pg(
        &f,
        &pg.url,
        &["import", "--interactions", file, "--json"],
    )));
    assert_eq!(
        again["interactions"]["events"], 0,
        "importing again adds nothing: {again}"
    );
    f.cmd(&["import", "--interactions", file]).assert().success();
    let ids = common::result_ids;
    let both = |args: &[&str]| -> (serde_json::Value, serde_json::Value) {
        (
            common::json(&stdout(&mut on_pg(&f, &pg.url, args))),
            common::json(&stdout(&mut f.cmd(args))),
        )
    };
    for args in [
        &["recommend", "--user", "ann", "-k", "8", "--json"][..],
        &["recommend", "--user", "walk-in", "-k", "8", "--json"],
        &["together", "1614", "--json"],
    ] {
        let (p, l) = both(args);
        assert_eq!(ids(&p), ids(&l), "{args:?}: {p} {l}");
        assert!(!ids(&p).is_empty());
    }
    let (p, l) = both(&["train", "--feed", "--json"]);
    assert_eq!(p["fit"]["blend"], l["fit"]["blend"]);
    assert_eq!(p["bought_together"], l["bought_together"]);
    let (p, l) = both(&["recommend", "--user", "bob", "-k", "8", "--json"]);
    assert_eq!(p["model"], "feed model 1");
    assert_eq!(ids(&p), ids(&l));
    let (p, l) = both(&["eval", "--personal", "--histories", "--days", "5", "--json"]);
    let map = |v: &serde_json::Value| v["methods"][0]["all"]["map"].as_f64().unwrap();
    assert!((map(&p) - map(&l)).abs() < 1e-9, "{p} {l}");
}

#[test]
fn lookbook_http_serves_a_postgres_catalogue_the_same_and_keeps_its_address_out() {
    use common::api::{Api, READ, WRITE};
    let Some((pg, f)) = migrated("http") else { return };
    let file = common::shop_history::history(&f);
    let file = file.to_str().unwrap();
    on_pg(&f, &pg.url, &["import", "--interactions", file])
        .assert()
        .success();
    f.cmd(&["import", "--interactions", file]).assert().success();
    let on_pg_api = Api::start_on(&f, std::ffi::OsStr::new(&pg.url), &[]);
    let on_sqlite = Api::start(&f, &[]);
    for path in [
        "/v1/users/ann/feed?k=6",
        "/v1/products/1614/together?k=3",
        "/v1/popular?k=4",
    ] {
        let (p, l) = (on_pg_api.get(path, Some(READ)), on_sqlite.get(path, Some(READ)));
        assert_eq!(p.status, 200, "{path}: {}", p.text());
        assert_eq!(common::result_ids(&p.json()), common::result_ids(&l.json()), "{path}");
    }
    // The same event twice in one millisecond is two views, in both stores.
    let body = br#"[{"user":"web","product":"1614","kind":"view","time":1700000000000},
                    {"user":"web","product":"1614","kind":"view","time":1700000000000},
                    {"user":"web","product":"7191","kind":"like"}]"#;
    for api in [&on_pg_api, &on_sqlite] {
        let r = api.post("/v1/events", Some(WRITE), body);
        assert_eq!(r.json()["accepted"], 3, "{}", r.text());
        let feed = api.get("/v1/users/web/feed?k=3", Some(READ)).json();
        assert_eq!(feed["likes"], 1, "{feed}");
    }
    let mut c = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    let views: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM events e JOIN users u ON u.id = e.user_id WHERE u.name = 'web' AND e.kind = 'view'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(views, 2);
    // No answer, error or log line carries the database's address.
    let missing = on_pg_api.get("/v1/products/nope/similar", Some(READ));
    assert_eq!(missing.status, 404);
    let password = std::env::var("LOOKBOOK_PG_PASSWORD").ok().filter(|p| !p.is_empty());
    for text in [
        missing.text(),
        on_pg_api.get("/metrics", Some(READ)).text(),
        on_pg_api.log(),
    ] {
        assert!(!text.contains(&pg.url), "{text}");
        if let Some(pw) = &password {
            assert!(!text.contains(pw.as_str()), "{text}");
        }
    }
}
