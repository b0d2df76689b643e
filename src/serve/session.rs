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
use crate::tui::jobs::Jobs;
use crate::tui::{handle_event, ui};

use super::input::InputParser;
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

/// Frames waiting for a client at most: while they are, the session draws nothing new (the
/// frame drawn when the client reads again supersedes everything in between).
const QUEUED_FRAMES: usize = 2;

/// Bytes per SSH data message. russh queues a few messages per connection and holds back what
/// the client's window does not take; small messages keep both bounded for a client that
/// stops reading.
const MESSAGE_BYTES: usize = 32 * 1024;

/// Frames go into a buffer; each flush queues it (bounded) for the channel, sent in order off
/// this thread.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

/// Whether the client has taken enough of what was sent for another frame to be queued.
struct Room(tokio::sync::mpsc::Sender<Vec<u8>>);

impl Room {
    fn free(&self) -> bool {
        self.0.capacity() > 0
    }
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
        match self.tx.try_send(std::mem::take(&mut self.buf)) {
            Ok(()) => Ok(()),
            // Kept for the next flush; frames are drawn only when there is room, so this holds
            // at most the few bytes written outside a frame.
            Err(tokio::sync::mpsc::error::TrySendError::Full(bytes)) => {
                self.buf = bytes;
                Ok(())
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the connection is gone",
            )),
        }
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
    let (tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(QUEUED_FRAMES);
    let sender = handle.clone();
    runtime.spawn(async move {
        // One message at a time: each waits until russh takes it, which it does only while the
        // client keeps reading.
        while let Some(bytes) = out_rx.recv().await {
            for piece in bytes.chunks(MESSAGE_BYTES) {
                if sender.data(channel, piece.to_vec()).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut writer = ChannelWriter { tx, buf: Vec::new() };
    let _ = writer.write_all(ENTER).and_then(|_| writer.flush());
    let goodbye = match session_loop(&shared, &user, guest, writer, size, picker, rx) {
        Ok(Some(msg)) => msg,
        Ok(None) => String::new(),
        Err(e) => {
            log(format_args!("#{id}: the app stopped: {e}"));
            "lookbook stopped on an error (the server's log says which); please reconnect in a moment\r\n".into()
        }
    };
    if let Ok(mut s) = shared.sessions.lock() {
        s.remove(&id);
    }
    drop(shared);
    lookbook::memory::release_freed();
    runtime.spawn(async move {
        let mut bye = LEAVE.to_vec();
        bye.extend_from_slice(goodbye.as_bytes());
        let _ = handle.data(channel, bye).await;
        let _ = handle.exit_status_request(channel, 0).await;
        let _ = handle.eof(channel).await;
        let _ = handle.close(channel).await;
    });
}

/// What one input did to the session.
enum Step {
    /// Keep going.
    Go,
    /// Leave, with a last message for the client (empty for none).
    Leave(String),
}

/// The event loop; returns a last message for the client, if any.
fn session_loop(
    shared: &Shared,
    user: &str,
    guest: bool,
    writer: ChannelWriter,
    size: (u16, u16),
    picker: Option<Picker>,
    rx: Receiver<Input>,
) -> anyhow::Result<Option<String>> {
    let area = |(w, h): (u16, u16)| Rect::new(0, 0, w, h);
    // No ratatui Terminal: it keeps two full buffers per connection. A session keeps only what
    // the client shows now, draws the next frame into a fresh buffer, sends the difference and
    // keeps the new one (a third of the memory per connection at 120x40).
    let room = Room(writer.tx.clone());
    let mut backend = CrosstermBackend::new(writer);
    let mut shown = Buffer::empty(area(size));
    let images_on = picker.is_some();
    let start_app = |tab| -> anyhow::Result<App> {
        let jobs = Jobs::start_with(shared.db.clone(), picker.clone(), Some(Arc::clone(&shared.engine)));
        let mut app = {
            let remote = shared.remote();
            App::new_remote(user, guest, jobs, images_on, &remote.catalog, &remote.products)?
        };
        if let Some(tab) = tab {
            app.set_tab(tab);
        }
        Ok(app)
    };
    let mut app = start_app(None)?;
    let mut parser = InputParser::default();
    let mut size = size;
    let mut dirty = true;
    let mut resized = false;
    // Likes made elsewhere (another server on the same catalogue) reach this feed within this.
    const SYNC: Duration = Duration::from_secs(1);
    let mut synced = std::time::Instant::now();
    loop {
        // Everything that has arrived is applied before the next frame: a storm of resizes
        // draws once, at the last size.
        let mut next = match rx.recv_timeout(Duration::from_millis(30)) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
        };
        while let Some(input) = next.take() {
            let step = match input {
                Input::Bytes(b) => {
                    let mut step = Step::Go;
                    for ev in parser.feed(&b) {
                        dirty |= handle_event(&mut app, ev);
                        if app.quitting() {
                            step = Step::Leave(String::new());
                            break;
                        }
                    }
                    step
                }
                Input::Resize(w, h) => {
                    size = (w, h);
                    resized = true;
                    dirty = true;
                    Step::Go
                }
                Input::Reload => {
                    app = start_app(Some(app.tab()))?;
                    dirty = true;
                    Step::Go
                }
                Input::Close => Step::Leave(String::new()),
                Input::Shutdown => Step::Leave("lookbook is restarting; please reconnect in a moment\r\n".into()),
            };
            if let Step::Leave(msg) = step {
                return Ok((!msg.is_empty()).then_some(msg));
            }
            next = rx.try_recv().ok();
        }
        dirty |= app.poll_jobs();
        if synced.elapsed() >= SYNC {
            dirty |= app.refresh_feedback();
            synced = std::time::Instant::now();
        }
        // A client that has not taken the frames already queued gets no new one: the frame drawn
        // once it reads again supersedes everything in between, and the queue stays bounded.
        if dirty && room.free() {
            if resized {
                // The client clears, so the next frame is drawn whole.
                shown = Buffer::empty(area(size));
                let _ = crossterm::queue!(backend, crossterm::terminal::Clear(crossterm::terminal::ClearType::All));
                resized = false;
            }
            app.prepare(area(size));
            let mut next = Buffer::empty(area(size));
            ui::draw_into(&mut next, &app);
            let _ = crossterm::queue!(backend, crossterm::terminal::BeginSynchronizedUpdate);
            backend.draw(shown.diff(&next).into_iter())?;
            let _ = crossterm::queue!(backend, crossterm::terminal::EndSynchronizedUpdate);
            Backend::flush(&mut backend)?;
            shown = next;
            dirty = false;
        }
    }
}
