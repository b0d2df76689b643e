//! The only way the commands write text: sanitised (see `lookbook::text`), and quiet on a closed
//! pipe (`lookbook likes --json | head` ends like any Unix filter, not with a panic).

use std::io::{self, Write};

/// Writes `s` to stdout as it is: for JSON, whose strings serde has already escaped.
pub fn raw(s: &str) {
    let mut o = io::stdout().lock();
    finish(o.write_all(s.as_bytes()).and_then(|_| o.flush()));
}

/// Writes text to stdout with every unsafe character made visible.
pub fn stdout(s: &str) {
    raw(&lookbook::text::sanitize_lines(s));
}

/// Writes text to stderr with every unsafe character made visible.
pub fn stderr(s: &str) {
    let mut e = io::stderr().lock();
    finish(
        e.write_all(lookbook::text::sanitize_lines(s).as_bytes())
            .and_then(|_| e.flush()),
    );
}

/// A reader that went away is a normal end; any other write failure is reported once.
fn finish(r: io::Result<()>) {
    if let Err(e) = r {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        let _ = writeln!(io::stderr(), "lookbook: cannot write output: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`stdout`].
macro_rules! outln {
    () => { $crate::cli::out::stdout("\n") };
    ($($t:tt)*) => { $crate::cli::out::stdout(&format!("{}\n", format_args!($($t)*))) };
}

/// `print!` through [`stdout`].
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::out::stdout(&format!($($t)*)) };
}

/// `eprintln!` through [`stderr`].
macro_rules! errln {
    () => { $crate::cli::out::stderr("\n") };
    ($($t:tt)*) => { $crate::cli::out::stderr(&format!("{}\n", format_args!($($t)*))) };
}

pub(crate) use {errln, out, outln};
