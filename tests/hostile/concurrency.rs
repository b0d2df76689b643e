//! Several writers on one catalogue: every write lands or fails loudly after the busy timeout.

use crate::common::Fixture;
use lookbook::catalog::Catalog;
use std::sync::{Arc, Barrier};

fn imported() -> Fixture {
    let fx = Fixture::mini();
    fx.import();
    fx
}

#[test]
fn threads_liking_at_once_lose_nothing() {
    let fx = imported();
    let ids = fx.ids();
    let user = Catalog::open(fx.db()).unwrap().ensure_user("ana").unwrap();
    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (db, barrier) = (fx.db(), barrier.clone());
            let mine: Vec<i64> = ids.iter().copied().skip(t).step_by(threads).collect();
            std::thread::spawn(move || {
                let mut cat = Catalog::open(db).unwrap();
                barrier.wait();
                for pid in mine {
                    cat.set_feedback(user, &[pid], 1.0).unwrap();
                    // A reader between writes, as the app re-ranks after each like.
                    cat.feedback(user).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let cat = Catalog::open(fx.db()).unwrap();
    assert_eq!(cat.feedback(user).unwrap().len(), ids.len());
}

#[test]
fn creating_the_same_user_at_once_gives_one_user() {
    let fx = imported();
    drop(Catalog::open(fx.db()).unwrap());
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (db, barrier) = (fx.db(), barrier.clone());
            std::thread::spawn(move || {
                let cat = Catalog::open(db).unwrap();
                barrier.wait();
                cat.ensure_user("bob").unwrap()
            })
        })
        .collect();
    let ids: Vec<i64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(Catalog::open(fx.db()).unwrap().users().unwrap().len(), 1);
}

#[test]
fn processes_liking_at_once_lose_nothing() {
    let fx = imported();
    fx.cmd(&["users", "add", "ana"]).assert().success();
    let ids = fx.ids();
    let procs = 4;
    let handles: Vec<_> = (0..procs)
        .map(|p| {
            let mine: Vec<String> = ids.iter().skip(p).step_by(procs).map(|i| i.to_string()).collect();
            let cmds: Vec<_> = mine.iter().map(|id| fx.cmd(&["like", "--user", "ana", id])).collect();
            std::thread::spawn(move || {
                for mut c in cmds {
                    let out = c.output().unwrap();
                    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let cat = Catalog::open(fx.db()).unwrap();
    let user = cat.require_user("ana").unwrap();
    assert_eq!(cat.feedback(user).unwrap().len(), ids.len());
}
