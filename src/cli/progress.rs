//! kdam progress bars on stderr, only when stderr is a terminal (scripts get clean output).

use kdam::{Bar, BarExt};
use std::io::IsTerminal;
use std::sync::Mutex;

/// A [`lookbook::Progress`] that draws a kdam bar per phase.
pub struct KdamProgress {
    bar: Mutex<Option<Bar>>,
    enabled: bool,
}

impl KdamProgress {
    /// Bars when stderr is a terminal, silence otherwise.
    pub fn new() -> Self {
        KdamProgress {
            bar: Mutex::new(None),
            enabled: std::io::stderr().is_terminal(),
        }
    }
}

impl lookbook::Progress for KdamProgress {
    fn start(&self, what: &str, total: usize) {
        if !self.enabled {
            return;
        }
        if let Ok(mut b) = self.bar.lock() {
            *b = Bar::builder()
                .desc(what)
                .total(total)
                .unit(" items")
                .dynamic_ncols(true)
                .build()
                .ok();
        }
    }

    fn advance(&self, n: usize) {
        if let Ok(mut b) = self.bar.lock()
            && let Some(bar) = b.as_mut()
        {
            let _ = bar.update(n);
        }
    }

    fn message(&self, text: &str) {
        if !self.enabled {
            return;
        }
        match self.bar.lock() {
            Ok(mut b) if b.is_some() => {
                if let Some(bar) = b.as_mut() {
                    let _ = bar.write(text);
                }
            }
            _ => crate::cli::out::errln!("{text}"),
        }
    }

    fn log(&self, text: &str) {
        if self.enabled {
            self.message(text);
        } else {
            crate::cli::out::errln!("{text}");
        }
    }

    fn finish(&self) {
        if let Ok(mut b) = self.bar.lock()
            && let Some(mut bar) = b.take()
        {
            let _ = bar.refresh();
            crate::cli::out::errln!();
        }
    }
}
