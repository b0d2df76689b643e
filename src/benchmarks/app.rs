//! The app measured off-screen, for `lookbook bench`: first frame and re-rank frame times, and
//! resident memory, on a synthetic or a real catalogue.

use anyhow::Result;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::jobs::Jobs;
use crate::tui::ui;

/// Start-up and re-rank timings of the app, and its memory.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StartupBench {
    /// Open the catalogue, load products, draw the first frame.
    pub first_frame_ms: f64,
    /// From the same start to the first frame with look-alikes drawn (the engine loaded: the
    /// kept index mapped, or built when there is none).
    pub look_alikes_ms: f64,
    /// A like, the re-rank it causes, and the next frame.
    pub rerank_frame_ms: f64,
    /// Resident memory once the vectors are loaded.
    pub rss_mib: f64,
}

/// Measures the app on `n` synthetic products with 2048-d vectors, drawn to an off-screen buffer.
pub fn bench_startup(n: usize) -> Result<StartupBench> {
    let dir = tempfile_dir()?;
    let db = dir.join("bench.db");
    lookbook::synthetic::write_synthetic_catalog(&db, n, 2048, 5)?;
    let r = in_child(&db);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Measures the app on a copy of a real catalogue (likes go to the copy, not to `db`).
pub fn bench_catalogue(db: &Path) -> Result<StartupBench> {
    let dir = tempfile_dir()?;
    let copy = dir.join("copy.db");
    lookbook::catalog::Catalog::open_existing(db)?.copy_to(&copy)?;
    let r = in_child(&copy);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Runs [`bench_app`] in a fresh `lookbook` process, so the resident memory is the app's alone
/// (not what this process kept from writing the synthetic catalogue or earlier benchmarks).
/// The first open of a catalogue whose vectors just changed builds its index (seconds at
/// 50,000); that one is run and set aside, and the figures are those of the next open, on the
/// index kept beside the catalogue, as every later start meets it.
fn in_child(db: &Path) -> Result<StartupBench> {
    child(db)?;
    child(db)
}

fn child(db: &Path) -> Result<StartupBench> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--db")
        .arg(db)
        .args(["bench", "app-child"])
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "the app benchmark (a child lookbook process) failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The child's side of [`in_child`]: measures the app on `db` and prints the figures as JSON
/// (read by the parent, not by a person).
pub fn app_child(db: &Path) -> Result<()> {
    let r = bench_app(db)?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

fn bench_app(db: &Path) -> Result<StartupBench> {
    let size = Rect::new(0, 0, 160, 48);
    let t = Instant::now();
    let jobs = Jobs::start(db.to_path_buf(), None);
    let mut app = App::new(db.to_path_buf(), "lookbook-bench", jobs, false)?;
    let mut term = Terminal::new(TestBackend::new(size.width, size.height))?;
    app.prepare(size);
    term.draw(|f| ui::draw(f, &app))?;
    let first_frame_ms = t.elapsed().as_secs_f64() * 1e3;
    app.settle(Duration::from_secs(120));
    app.prepare(size);
    term.draw(|f| ui::draw(f, &app))?;
    let look_alikes_ms = t.elapsed().as_secs_f64() * 1e3;
    if app.look_alike_count() == 0 {
        anyhow::bail!("the app benchmark drew no look-alikes on {}", db.display());
    }
    let rss_mib = lookbook::memory::rss_mib().unwrap_or(0.0);
    let mut times = Vec::new();
    for i in 0..20 {
        app.update(Action::Down);
        app.prepare(size);
        let t = Instant::now();
        app.update(if i % 2 == 0 {
            Action::ToggleLike
        } else {
            Action::AlphaUp
        });
        app.prepare(size);
        term.draw(|f| ui::draw(f, &app))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(StartupBench {
        first_frame_ms,
        look_alikes_ms,
        rerank_frame_ms: lookbook::synthetic::Timing::of(times).p50_ms,
        rss_mib,
    })
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    super::temp_dir("app")
}
