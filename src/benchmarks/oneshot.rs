//! One-shot commands as a script or a web page runs them: `lookbook similar ID` and
//! `recommend --user U` as separate processes on catalogue files this benchmark writes, timed
//! from spawn to exit, with each process's peak resident memory. The first run after the
//! vectors were written pays for the index (built, then kept beside the catalogue); the rest
//! are what every later call costs.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use lookbook::catalog::Catalog;
use lookbook::synthetic::{Timing, write_synthetic_catalog_as};

/// Runs of each command after the first.
const RUNS: usize = 7;

/// One command on one catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct OneShot {
    /// The command line after `lookbook --db FILE`.
    pub command: String,
    /// Products.
    pub items: usize,
    /// Vector length.
    pub dim: usize,
    /// The first run after the vectors were written (builds and keeps the index), ms.
    pub first_ms: f64,
    /// The later runs.
    pub later: Timing,
    /// The largest peak resident memory of any later run, MiB (Linux; 0 elsewhere). The
    /// kernel starts counting at the fork, so it includes up to the benchmark's own
    /// resident memory, `parent_rss_mib`.
    pub peak_rss_mib: f64,
    /// The benchmark process's resident memory when it started the runs, MiB.
    pub parent_rss_mib: f64,
}

/// The sizes the issue names (5 x 10^4 x 2048 and 10^6 x 256), or one small one when `quick`;
/// then, when `db` is an embedded catalogue, `similar ID` and `similar --image PHOTO` on it
/// (the photo query loads the model's weights, which synthetic catalogues have none of), and
/// the photo query again on the synthetic catalogue of the model's vector length, its vectors
/// stored under the model's identity (random vectors: the answers mean nothing, the time is
/// that of a real catalogue of that size).
pub fn run(quick: bool, db: &Path) -> Result<Vec<OneShot>> {
    let sizes: &[(usize, usize)] = if quick {
        &[(10_000, 2048)]
    } else {
        &[(50_000, 2048), (1_000_000, 256)]
    };
    let own = own_catalogue(db)?;
    let mut out = Vec::new();
    for &(n, dim) in sizes {
        let dir = super::temp_dir(&format!("oneshot-{n}x{dim}"))?;
        let path = dir.join("catalog.db");
        let r = measure(
            &path,
            n,
            dim,
            own.as_ref().filter(|o| o.dim == dim).map(|o| (db, o)),
            &mut out,
        );
        let _ = std::fs::remove_dir_all(&dir);
        r?;
    }
    if let Some(o) = own {
        let commands = [
            vec!["similar", o.middle.as_str(), "-k", "10", "--json"],
            o.photo_query(),
        ];
        time_commands(db, o.items, o.dim, &commands, &mut out)?;
    }
    Ok(out)
}

/// An embedded catalogue of a real model (one with weights to load).
struct Own {
    items: usize,
    dim: usize,
    /// A product in the middle.
    middle: String,
    /// One of its photos.
    photo: String,
    /// The weights its vectors were made with.
    weights: String,
}

impl Own {
    /// `similar --image PHOTO` with its weights named, so it runs on any catalogue.
    fn photo_query(&self) -> Vec<&str> {
        vec![
            "similar",
            "--image",
            self.photo.as_str(),
            "--weights",
            self.weights.as_str(),
            "-k",
            "10",
            "--json",
        ]
    }
}

/// The catalogue at `db`, when it exists and has vectors of a real model.
fn own_catalogue(db: &Path) -> Result<Option<Own>> {
    if !db.exists() {
        return Ok(None);
    }
    let cat = Catalog::open_existing(db)?;
    let Some(model) = cat.active_model()? else {
        return Ok(None);
    };
    if model.spec.architecture == "none" {
        return Ok(None);
    }
    let products = cat.products()?;
    let root = cat.image_root()?;
    let Some(middle) = products.get(products.len() / 2) else {
        return Ok(None);
    };
    let Some(photo) = products.iter().map(|p| root.join(&p.image_path)).find(|p| p.is_file()) else {
        return Ok(None);
    };
    let Ok(weights) = lookbook::vision::weights::locate(None, &cat.dir()) else {
        return Ok(None);
    };
    Ok(Some(Own {
        items: products.len(),
        dim: model.spec.dim,
        middle: middle.id.to_string(),
        photo: photo.to_string_lossy().into_owned(),
        weights: weights.to_string_lossy().into_owned(),
    }))
}

/// The child's side of the catalogue writing: `size` is `PRODUCTS,DIM`; the vectors go under
/// the active model of `model_of` when given.
pub fn write_child(db: &Path, size: &str, model_of: Option<&Path>) -> Result<()> {
    let (n, dim) = size
        .split_once(',')
        .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
        .with_context(|| format!("bench write-synthetic {size:?}: expected PRODUCTS,DIM"))?;
    let spec = match model_of {
        Some(p) => Some(
            Catalog::open_existing(p)?
                .active_model()?
                .with_context(|| format!("{}: no active model", p.display()))?
                .spec,
        ),
        None => None,
    };
    Ok(write_synthetic_catalog_as(db, n, dim, 5, spec.as_ref())?)
}

/// Writes a synthetic catalogue of `n x dim` at `db` (its vectors under `own`'s model when
/// given) and times `similar` and `recommend` on it, and the photo query when `own` is given.
fn measure(db: &Path, n: usize, dim: usize, own: Option<(&Path, &Own)>, out: &mut Vec<OneShot>) -> Result<()> {
    // Written by a child: the kernel counts a spawned process's peak from the moment it is
    // forked, so a parent that had held a million vectors would inflate every figure.
    let size = format!("{n},{dim}");
    let mut write = vec!["bench", "write-synthetic", size.as_str()];
    let own_db = own.map(|(p, _)| p.to_string_lossy().into_owned());
    if let Some(p) = &own_db {
        write.extend(["--synthetic-model-of", p.as_str()]);
    }
    spawn(db, &write)?;
    {
        let mut cat = Catalog::open_existing(db)?;
        let user = cat.ensure_user("bench")?;
        let likes: Vec<i64> = (0..5).map(|i| 1 + (i * n as i64 / 5)).collect();
        cat.set_feedback(user, &likes, 1.0)?;
    }
    let query = (n / 2).to_string();
    let mut commands = vec![
        vec!["similar", query.as_str(), "-k", "10", "--json"],
        vec!["recommend", "--user", "bench", "-k", "10", "--json"],
    ];
    if let Some((_, o)) = own {
        commands.push(o.photo_query());
    }
    time_commands(db, n, dim, &commands, out)
}

/// Each command once (the first run after a change) and [`RUNS`] times more.
fn time_commands(db: &Path, n: usize, dim: usize, commands: &[Vec<&str>], out: &mut Vec<OneShot>) -> Result<()> {
    for args in commands {
        let (first_ms, _) = spawn(db, args)?;
        let (later, peak) = repeat(db, args)?;
        out.push(OneShot {
            command: args.join(" "),
            items: n,
            dim,
            first_ms,
            later,
            peak_rss_mib: peak,
            parent_rss_mib: lookbook::memory::rss_mib().unwrap_or(0.0),
        });
    }
    Ok(())
}

/// [`RUNS`] runs of one command: their times and the largest peak resident memory, MiB.
pub(super) fn repeat(db: &Path, args: &[&str]) -> Result<(Timing, f64)> {
    let mut times = Vec::new();
    let mut peak: f64 = 0.0;
    for _ in 0..RUNS {
        let (ms, rss) = spawn(db, args)?;
        times.push(ms);
        peak = peak.max(rss);
    }
    Ok((Timing::of(times), peak))
}

/// Runs `lookbook --db DB ARGS` to its end: milliseconds from spawn to exit, and the child's
/// peak resident memory in MiB.
pub(super) fn spawn(db: &Path, args: &[&str]) -> Result<(f64, f64)> {
    let t = Instant::now();
    let child = Command::new(std::env::current_exe()?)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting a lookbook process")?;
    let (ok, rss) = wait_with_peak(child)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if !ok {
        bail!("`lookbook {}` failed on {}", args.join(" "), db.display());
    }
    Ok((ms, rss))
}

/// Waits for a child and reads its peak resident memory from the kernel's accounting of it
/// (`wait4`'s `ru_maxrss`), which is gone once a plain `wait` has reaped it.
#[cfg(target_os = "linux")]
fn wait_with_peak(child: std::process::Child) -> Result<(bool, f64)> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child, and both pointers outlive the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    // The Child's handles are closed here; it is reaped already, so dropping it waits for nothing.
    drop(child);
    if r != pid {
        bail!(
            "waiting for lookbook process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok((ok, usage.ru_maxrss as f64 / 1024.0))
}

#[cfg(not(target_os = "linux"))]
fn wait_with_peak(mut child: std::process::Child) -> Result<(bool, f64)> {
    Ok((child.wait()?.success(), 0.0))
}
