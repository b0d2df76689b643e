//! The terminal app: ratatui + crossterm, images through ratatui-image.
//!
//! `run` sets the terminal up (image protocol detected once, before raw mode), installs a panic
//! hook that restores it, and runs the loop: input -> [`action::Action`] -> [`app::App::update`];
//! worker replies -> [`app::App::handle`]; then [`app::App::prepare`] and a pure [`ui::draw`],
//! wrapped in a synchronized update so frames never tear.
//!
//! Three layers, each importing only the ones below it:
//!
//! | module | job | imports |
//! | --- | --- | --- |
//! | [`layout`] | where each pane goes for a terminal size, hit-testing cells | ratatui's `Rect` |
//! | [`app`] | the state and `update(Action)`, with each component's state half: [`app::ListPane`], [`app::Strip`], [`app::FilterPicker`], [`app::HelpOverlay`], [`app::prompt`] | `layout`, `action`, `keys`, `jobs`, the library |
//! | [`ui`] | drawing an `&App`: the canvas and its safety pass, each component's draw half | `app`, `layout` |
//!
//! `action` and `keys` are the one key map; `jobs` the workers (engine, images, embedding).
//! `serve` reuses `App`, `ui` and `handle_event` for its sessions; its byte-stream input
//! parser and what sessions share live in `serve`.

pub mod action;
pub mod app;
pub mod jobs;
pub mod keys;
pub mod layout;
pub mod ui;

#[cfg(test)]
mod tests;

use anyhow::{Context, Result};
use crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind, MouseButton, MouseEventKind,
};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::layout::Rect;
use ratatui_image::picker::{Picker, ProtocolType};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use action::Action;
use app::App;
use jobs::Jobs;

/// Picks the image protocol once, before raw mode.
pub fn picker_for(mode: &str) -> Result<Option<Picker>> {
    // Inside tmux or screen the multiplexer may never answer the capability query, and the
    // query's reader then swallows the first keys typed: go straight to half-blocks there.
    let multiplexed = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty())
        || std::env::var("TERM").is_ok_and(|t| t.starts_with("screen") || t.starts_with("tmux"));
    let query = || {
        if !multiplexed && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
            Picker::from_query_stdio().ok()
        } else {
            None
        }
    };
    Ok(match mode {
        "none" | "off" | "text" => None,
        "halfblocks" => Some(Picker::halfblocks()),
        "auto" => Some(query().unwrap_or_else(Picker::halfblocks)),
        "kitty" | "sixel" | "iterm2" => {
            let mut p = query().unwrap_or_else(Picker::halfblocks);
            p.set_protocol_type(match mode {
                "kitty" => ProtocolType::Kitty,
                "sixel" => ProtocolType::Sixel,
                _ => ProtocolType::Iterm2,
            });
            Some(p)
        }
        other => anyhow::bail!("--images {other:?}: expected auto, kitty, sixel, iterm2, halfblocks or none"),
    })
}

/// Puts the terminal back: leave raw mode and the alternate screen, show the cursor.
fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

/// Restores the terminal when dropped, whatever way the app leaves.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The signal that asked the app to stop (0: none yet).
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// SIGTERM, SIGHUP (the SSH connection went away) and SIGINT end the app the way `q` does:
/// the event loop sees the flag within a poll interval and unwinds, restoring the terminal. If
/// it is stuck, the signal thread restores the terminal itself after a grace period and exits.
fn watch_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT]).context("installing signal handlers")?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            STOP_SIGNAL.store(sig, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(2));
            restore_terminal();
            std::process::exit(128 + sig);
        }
    })?;
    Ok(())
}

/// Opens the app on `db` until the user quits; `embed_at_start` starts embedding missing
/// photos in the background at once (a catalogue just made from the demo).
pub fn run(db: &Path, images: &str, user: &str, embed_at_start: bool) -> Result<()> {
    let picker = picker_for(images)?;
    let images_on = picker.is_some();
    let jobs = Jobs::start(db.to_path_buf(), picker);
    let mut app = App::new(db.to_path_buf(), user, jobs, images_on)
        .with_context(|| format!("opening {}", lookbook::catalog::postgres::display_db(db)))?;
    if embed_at_start {
        app.update(Action::EmbedMissing);
    }

    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        default_hook(info);
    }));
    watch_signals()?;
    terminal::enable_raw_mode()
        .context("the app needs a terminal (raw mode failed); use the subcommands in scripts")?;
    let guard = TerminalGuard;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        cursor::Hide
    )?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let result = event_loop(&mut terminal, &mut app);
    drop(guard);
    match STOP_SIGNAL.load(std::sync::atomic::Ordering::SeqCst) {
        0 => result,
        sig => std::process::exit(128 + sig),
    }
}

fn event_loop<B: Backend>(terminal: &mut Terminal<B>, app: &mut App) -> Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut dirty = true;
    while !app.quit && STOP_SIGNAL.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        if dirty {
            let size = terminal.size()?;
            app.prepare(Rect::new(0, 0, size.width, size.height));
            let _ = execute!(std::io::stdout(), terminal::BeginSynchronizedUpdate);
            terminal.draw(|f| ui::draw(f, app))?;
            let _ = execute!(std::io::stdout(), terminal::EndSynchronizedUpdate);
            let _ = std::io::stdout().flush();
            dirty = false;
        }
        if event::poll(Duration::from_millis(40))? {
            // Drain everything queued so a held key re-ranks once, not once per repeat.
            loop {
                dirty |= handle_event(app, event::read()?);
                if app.quit || !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        dirty |= app.poll_jobs();
    }
    Ok(())
}

/// Maps one terminal event to app changes; true when a redraw is needed.
pub fn handle_event(app: &mut App, ev: Event) -> bool {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => {
            // Every key of every mode goes through the one key map.
            if let Some(a) = keys::action_for(app.mode.key_mode(), k) {
                app.update(a);
            }
            true
        }
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                app.update(Action::ClickAt(m.column, m.row));
                true
            }
            MouseEventKind::ScrollDown => {
                app.update(Action::Down);
                true
            }
            MouseEventKind::ScrollUp => {
                app.update(Action::Up);
                true
            }
            _ => false,
        },
        Event::Resize(_, _) => true,
        _ => false,
    }
}
