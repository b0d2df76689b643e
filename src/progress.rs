//! How long-running library work reports progress without knowing about terminals.

/// Receives progress from imports, embedding and training; the CLI draws a kdam bar, the TUI a gauge.
pub trait Progress: Sync {
    /// A phase begins with `total` units of work.
    fn start(&self, what: &str, total: usize);
    /// `n` more units are done.
    fn advance(&self, n: usize);
    /// A free-form status line (e.g. the loss of an epoch).
    fn message(&self, _text: &str) {}
    /// A line worth keeping in a log even when nobody watches a bar (a shared embedding
    /// worker's commits).
    fn log(&self, text: &str) {
        self.message(text);
    }
    /// The phase is over.
    fn finish(&self) {}
}

/// Discards progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: usize) {}
    fn advance(&self, _n: usize) {}
}
