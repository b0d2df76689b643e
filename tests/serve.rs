//! `lookbook serve` for real: the binary on a free loopback port with a temporary host key and an
//! authorized_keys file, driven by russh clients. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ssh::{app_session, connect, read_until, start};
use russh::ChannelMsg;
use std::time::{Duration, Instant};

fn likes(fx: &common::Fixture, user: &str) -> usize {
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    cat.user_id(user)
        .unwrap()
        .map(|u| cat.feedback(u).unwrap().len())
        .unwrap_or(0)
}

#[test]
fn serves_the_app_over_ssh_and_lets_nothing_else_in() {
    let fx = common::Fixture::mini();
    fx.ready();
    let first_name = {
        let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
        cat.products().unwrap()[0].name.chars().take(12).collect::<String>()
    };
    let server = start(&fx);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The first frame, with products from the catalogue on it; then j, Enter, l.
        let (ana, ok) = connect(server.port, "ana", 1).await;
        assert!(ok, "the authorized key logs in");
        let mut ch = app_session(&ana, 100, 30).await;
        let frame = read_until(&mut ch, 30, |s| s.contains(&first_name)).await;
        assert!(frame.contains(&first_name), "first frame: {frame:?}");
        assert!(frame.contains("\x1b[?1049h"), "the alternate screen");
        for k in ["j", "\r", "l"] {
            ch.data_bytes(k.as_bytes().to_vec()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let after = read_until(&mut ch, 10, |s| s.contains("liked")).await;
        assert!(after.contains("liked"), "the like reached the status line");
        let deadline = Instant::now() + Duration::from_secs(10);
        while likes(&fx, "ana") != 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(likes(&fx, "ana"), 1, "the like is stored under ana");

        // A resize redraws at the new size: the status line moves to the new last rows.
        ch.window_change(60, 20, 0, 0).await.unwrap();
        let redrawn = read_until(&mut ch, 10, |s| s.contains("\x1b[19;1H") && s.contains("ana ♥1")).await;
        assert!(
            redrawn.contains("\x1b[19;1H") && redrawn.contains("ana ♥1"),
            "redrawn after resize: {redrawn:?}"
        );

        // A second connection; closing it leaves the first one working.
        let (bob, ok) = connect(server.port, "bob", 1).await;
        assert!(ok);
        let mut ch2 = app_session(&bob, 80, 24).await;
        let _ = read_until(&mut ch2, 30, |s| s.contains(&first_name)).await;
        ch2.data_bytes(b"q".to_vec()).await.unwrap();
        let end = read_until(&mut ch2, 10, |s| s.contains("\x1b[?1049l")).await;
        assert!(end.contains("\x1b[?1049l"), "q restores bob's terminal");
        ch.data_bytes(b"1".to_vec()).await.unwrap(); // from Similar (Enter went there) to Browse
        let still = read_until(&mut ch, 10, |s| s.contains("Browse")).await;
        assert!(
            still.contains("Browse"),
            "ana's session still answers: {:?}",
            lookbook::text::truncate(&still, 600)
        );
        assert_eq!(likes(&fx, "bob"), 0, "bob cannot see or change ana's likes");

        // exec is refused: no command output, a failure reply.
        let (carol, ok) = connect(server.port, "carol", 1).await;
        assert!(ok);
        let exec = carol.channel_open_session().await.unwrap();
        exec.exec(true, "echo hacked").await.unwrap();
        let mut exec = exec;
        let reply = tokio::time::timeout(Duration::from_secs(10), exec.wait())
            .await
            .unwrap();
        assert!(matches!(reply, Some(ChannelMsg::Failure)), "exec: {reply:?}");

        // Port forwarding is refused.
        let fwd = ana
            .channel_open_direct_tcpip("127.0.0.1", u32::from(server.port), "127.0.0.1", 5555)
            .await;
        assert!(fwd.is_err(), "direct-tcpip was opened");

        // An unknown key is refused.
        let (_mallory, ok) = connect(server.port, "ana", 2).await;
        assert!(!ok, "an unknown key got in");
    });
}
