//! eval (retrieval and personal) and train through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, json, method_names};
use predicates::prelude::*;

#[test]
fn eval_reports_every_method_and_draws_a_plot() {
    let fx = Fixture::mini();
    fx.ready();
    let plot = fx.path("p.svg");
    let out = fx
        .cmd(&["eval", "-k", "5", "--json", "--plot", plot.to_str().unwrap()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let methods = method_names(&v);
    assert_eq!(methods, vec!["model", "model-plain", "colour-histogram", "raw-pixels"]);
    for m in v["methods"].as_array().unwrap() {
        for k in ["precision", "recall", "map", "ndcg", "hit_rate", "coverage"] {
            let x = m["metrics"][k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{k} = {x}");
        }
        assert_eq!(m["precision_curve"].as_array().unwrap().len(), 20);
        // The by-label figures and the prototypes are there for every method, in range.
        for k in ["macro_precision", "rare_precision", "common_precision"] {
            let x = m[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{k} = {x}");
        }
        for k in ["p_at_1", "p_at_10", "mrr"] {
            let x = m["prototypes"]["retrieval"][k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{k} = {x}");
        }
        assert!(m["prototypes"]["retrieval"]["labels"].as_u64().unwrap() > 0);
    }
    // Every type of the mini catalogue has under 100 products: every query is a rare one.
    assert_eq!(v["rare_under"], 100);
    assert_eq!(v["rare_queries"], v["queries"]);
    let model = &v["methods"][0];
    assert_eq!(model["rare_precision"], model["metrics"]["precision"]);
    assert!(v["queries"].as_u64().unwrap() > 0);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("<svg") && svg.contains("raw-pixels"));
}

#[test]
fn eval_scores_neighbourhood_levers_beside_the_plain_vectors() {
    let fx = Fixture::mini();
    fx.ready();
    let out = fx
        .cmd(&[
            "eval",
            "-k",
            "3",
            "--no-baselines",
            "--levers",
            "qe1,dba1+qe2@1",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let methods = method_names(&v);
    assert_eq!(methods, vec!["model", "model-plain", "qe1", "dba1+qe2@1"]);
    assert!(
        v["methods"][3]["description"]
            .as_str()
            .unwrap()
            .contains("2 best (alpha 1)")
    );
    fx.cmd(&["eval", "--levers", "qe0"]).assert().failure();
}

#[test]
fn eval_with_query_file_and_level() {
    let fx = Fixture::mini();
    fx.ready();
    let ids = fx.ids();
    let q = fx.path("q.txt");
    std::fs::write(&q, format!("# two queries\n{}\n{}\n", ids[0], ids[7])).unwrap();
    let out = fx
        .cmd(&[
            "eval",
            "--queries",
            q.to_str().unwrap(),
            "--level",
            "masterCategory",
            "--no-baselines",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)["queries"], 2);
    std::fs::write(&q, "12x\n").unwrap();
    fx.cmd(&["eval", "--queries", q.to_str().unwrap()]).assert().failure();
}

#[test]
fn personal_eval_compares_against_baselines() {
    let fx = Fixture::mini();
    fx.ready();
    let out = fx
        .cmd(&["eval", "--personal", "--users", "30", "-k", "5", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let names = method_names(&v);
    assert_eq!(
        names,
        vec!["feed", "feed+mmr0.3", "last-like", "item-knn", "popularity"]
    );
    assert_eq!(v["source"], "simulated");
}

#[test]
fn personal_eval_sweeps_the_mmr_levels_it_is_given() {
    let fx = Fixture::mini();
    fx.ready();
    let out = fx
        .cmd(&[
            "eval",
            "--personal",
            "--users",
            "20",
            "-k",
            "5",
            "--mmr",
            "0.1,0.5",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let names = method_names(&v);
    assert_eq!(
        names,
        vec![
            "feed",
            "feed+mmr0.1",
            "feed+mmr0.5",
            "last-like",
            "item-knn",
            "popularity"
        ]
    );
    fx.cmd(&["eval", "--personal", "--mmr", "2"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("between 0 and 1"));
}

#[test]
fn train_learns_a_head_and_keeps_provenance() {
    let fx = Fixture::mini();
    fx.ready();
    let out = fx
        .cmd(&["train", "--epochs", "5", "--dim", "32", "--force", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["activated"], true);
    let losses = v["report"]["losses"].as_array().unwrap();
    assert!(!losses.is_empty());
    let out = fx
        .cmd(&["model", "info", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let info = json(&out);
    assert_eq!(info["active_model"]["dim"], 32);
    assert_eq!(info["active_model"]["head"]["out"], 32);
    assert_eq!(info["embedded"], 48);
    // similar and eval work in the projected space, and eval shows the backbone too.
    let id = fx.ids()[0].to_string();
    fx.cmd(&["similar", &id, "--json"]).assert().success();
    let out = fx
        .cmd(&["eval", "--no-baselines", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let names = method_names(&json(&out));
    assert_eq!(names, vec!["model", "model-plain", "backbone"]);
}
