//! One connection's app: the same `App`, event handling and view as the local one, with input
//! parsed from the SSH channel's bytes and frames written back into it.

use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui_image::picker::{Picker, ProtocolType};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::tui::app::App;
use crate::tui::input::InputParser;
use crate::tui::jobs::Jobs;
use crate::tui::{handle_event, view};

use super::{Shared, log};

/// What a session's thread is told.
pub enum Input {
    /// Bytes typed (keys, mouse reports).
    Bytes(Vec<u8>),
    /// The client's window changed size (columns, rows).
    Resize(u16, u16),
    /// The catalogue changed: rebuild the app on the new products and engine.
    Reload,
    /// The client went away.
    Close,
    /// The server is stopping.
    Shutdown,
}

/// Everything a session needs to start.
pub struct Start {
    pub shared: Arc<Shared>,
    pub id: u64,
    pub user: String,
    pub guest: bool,
    pub handle: russh::server::Handle,
    pub channel: russh::ChannelId,
    pub size: (u16, u16),
    pub picker: Option<Picker>,
    pub runtime: tokio::runtime::Handle,
}

/// Alternate screen, hidden cursor, mouse reports (SGR): what the local app sets up.
const ENTER: &[u8] = b"\x1b[?1049h\x1b[?25l\x1b[?1000h\x1b[?1002h\x1b[?1006h";
/// And back.
const LEAVE: &[u8] = b"\x1b[?1006l\x1b[?1002l\x1b[?1000l\x1b[?25h\x1b[?1049l";

/// Frames go into a buffer; each flush sends it down the channel (in order, off this thread).
#[derive(Clone)]
struct ChannelWriter {
    tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.tx
            .send(std::mem::take(&mut self.buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the connection is gone"))
    }
}

/// How pictures are drawn for a client: `LOOKBOOK_IMAGES` if it sent one (`ssh -o
/// SetEnv=LOOKBOOK_IMAGES=kitty`), else a guess from `TERM`, `TERM_PROGRAM` and `LC_TERMINAL`,
/// else half-blocks, which every colour terminal shows. `None` turns pictures off.
pub fn picker_for(term: &str, env: &HashMap<String, String>) -> Option<Picker> {
    let get = |k: &str| env.get(k).map(String::as_str).unwrap_or("");
    let protocol = match get("LOOKBOOK_IMAGES") {
        "none" | "off" | "text" => return None,
        "kitty" => Some(ProtocolType::Kitty),
        "sixel" => Some(ProtocolType::Sixel),
        "iterm2" => Some(ProtocolType::Iterm2),
        "halfblocks" => Some(ProtocolType::Halfblocks),
        _ => None,
    };
    let guessed = match (term, get("TERM_PROGRAM"), get("LC_TERMINAL")) {
        ("xterm-kitty", _, _) => ProtocolType::Kitty,
        (_, "WezTerm", _) => ProtocolType::Iterm2,
        (_, "iTerm.app", _) | (_, _, "iTerm2") => ProtocolType::Iterm2,
        (t, _, _) if t.starts_with("foot") || t == "mlterm" => ProtocolType::Sixel,
        _ => ProtocolType::Halfblocks,
    };
    let mut picker = Picker::halfblocks();
    picker.set_protocol_type(protocol.unwrap_or(guessed));
    Some(picker)
}

/// Runs the app for one connection until it quits, the client leaves or the server stops.
pub fn run(start: Start, rx: Receiver<Input>) {
    let Start {
        shared,
        id,
        user,
        guest,
        handle,
        channel,
        size,
        picker,
        runtime,
    } = start;
    let (tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let sender = handle.clone();
    runtime.spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            if sender.data(channel, bytes).await.is_err() {
                break;
            }
        }
    });
    let mut writer = ChannelWriter { tx, buf: Vec::new() };
    let _ = writer.write_all(ENTER).and_then(|_| writer.flush());
    let goodbye = match session_loop(&shared, &user, writer, size, picker, rx) {
        Ok(Some(msg)) => msg,
        Ok(None) => String::new(),
        Err(e) => {
            log(format_args!("#{id}: the app stopped: {e}"));
            "lookbook stopped on an error; please reconnect\r\n".into()
        }
    };
    if guest {
        // A guest's likes last only for the connection.
        if let Ok(mut cat) = shared.catalog.lock() {
            let _ = cat.remove_user(&user);
        }
    }
    if let Ok(mut s) = shared.sessions.lock() {
        s.remove(&id);
    }
    runtime.spawn(async move {
        let mut bye = LEAVE.to_vec();
        bye.extend_from_slice(goodbye.as_bytes());
        let _ = handle.data(channel, bye).await;
        let _ = handle.exit_status_request(channel, 0).await;
        let _ = handle.eof(channel).await;
        let _ = handle.close(channel).await;
    });
}

/// The event loop; returns a last message for the client, if any.
fn session_loop(
    shared: &Shared,
    user: &str,
    writer: ChannelWriter,
    size: (u16, u16),
    picker: Option<Picker>,
    rx: Receiver<Input>,
) -> anyhow::Result<Option<String>> {
    let area = |(w, h): (u16, u16)| Rect::new(0, 0, w, h);
    // No ratatui Terminal: it keeps two full buffers per connection. A session keeps only what
    // the client shows now, draws the next frame into a fresh buffer, sends the difference and
    // keeps the new one (a third of the memory per connection at 120x40).
    let mut backend = CrosstermBackend::new(writer);
    let mut shown = Buffer::empty(area(size));
    let images_on = picker.is_some();
    let start_app = |tab| -> anyhow::Result<App> {
        let jobs = Jobs::start_with(shared.db.clone(), picker.clone(), Some(Arc::clone(&shared.engine)));
        let mut app = App::new_remote(user, jobs, images_on, &shared.remote())?;
        if let Some(tab) = tab {
            app.tab = tab;
        }
        Ok(app)
    };
    let mut app = start_app(None)?;
    let mut parser = InputParser::default();
    let mut size = size;
    let mut dirty = true;
    // Likes made elsewhere (another server on the same catalogue) reach this feed within this.
    const SYNC: Duration = Duration::from_secs(1);
    let mut synced = std::time::Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(30)) {
            Ok(Input::Bytes(b)) => {
                for ev in parser.feed(&b) {
                    dirty |= handle_event(&mut app, ev);
                    if app.quit {
                        return Ok(None);
                    }
                }
            }
            Ok(Input::Resize(w, h)) => {
                size = (w, h);
                // The client clears, so the next frame is drawn whole.
                shown = Buffer::empty(area(size));
                let _ = crossterm::queue!(backend, crossterm::terminal::Clear(crossterm::terminal::ClearType::All));
                dirty = true;
            }
            Ok(Input::Reload) => {
                app = start_app(Some(app.tab))?;
                dirty = true;
            }
            Ok(Input::Close) | Err(RecvTimeoutError::Disconnected) => return Ok(None),
            Ok(Input::Shutdown) => {
                return Ok(Some("lookbook is restarting; please reconnect in a moment\r\n".into()));
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        dirty |= app.poll_jobs();
        if synced.elapsed() >= SYNC {
            dirty |= app.refresh_feedback();
            synced = std::time::Instant::now();
        }
        if dirty {
            app.prepare(area(size));
            let mut next = Buffer::empty(area(size));
            view::draw_into(&mut next, &app);
            let _ = crossterm::queue!(backend, crossterm::terminal::BeginSynchronizedUpdate);
            backend.draw(shown.diff(&next).into_iter())?;
            let _ = crossterm::queue!(backend, crossterm::terminal::EndSynchronizedUpdate);
            Backend::flush(&mut backend)?;
            shown = next;
            dirty = false;
        }
    }
}
