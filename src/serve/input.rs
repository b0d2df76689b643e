//! Terminal input bytes to key and mouse events, for sessions whose keyboard is not this
//! process's stdin (`lookbook serve` reads it from an SSH channel). Covers what terminals send
//! for the app's keys: UTF-8 text, control keys, CSI and SS3 cursor keys, `~` keys, Shift-Tab,
//! Alt-prefixed keys and SGR mouse reports. Anything else is dropped, never guessed at.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

/// Turns a chunk of input bytes into events. A chunk that ends inside a sequence keeps the rest
/// for the next call; a lone ESC at the end of a chunk is the Esc key.
#[derive(Debug, Default)]
pub struct InputParser {
    pending: Vec<u8>,
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> Event {
    Event::Key(KeyEvent::new(code, modifiers))
}

impl InputParser {
    /// Events for `bytes` (plus anything left from the previous chunk).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        let buf = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        let mut i = 0;
        while i < buf.len() {
            match parse_one(&buf[i..]) {
                Parsed::Event(ev, n) => {
                    out.extend(ev);
                    i += n;
                }
                Parsed::Incomplete => {
                    self.pending = buf[i..].to_vec();
                    break;
                }
            }
        }
        // Bound what is kept: a sequence longer than this is garbage, not an incomplete key.
        if self.pending.len() > 64 {
            self.pending.clear();
        }
        out
    }
}

enum Parsed {
    /// An event (or nothing, for a sequence that is dropped) and the bytes it used.
    Event(Option<Event>, usize),
    /// The bytes end inside a sequence.
    Incomplete,
}

fn parse_one(b: &[u8]) -> Parsed {
    let none = KeyModifiers::NONE;
    match b[0] {
        0x1b => match b.get(1) {
            None => Parsed::Event(Some(key(KeyCode::Esc, none)), 1),
            Some(b'[') => parse_csi(b),
            Some(b'O') => match b.get(2) {
                None => Parsed::Incomplete,
                Some(c) => Parsed::Event(cursor_key(*c).map(|k| key(k, none)), 3),
            },
            Some(0x1b) => Parsed::Event(Some(key(KeyCode::Esc, none)), 1),
            Some(_) => match parse_one(&b[1..]) {
                // Alt (Meta) sends ESC before the key.
                Parsed::Event(Some(Event::Key(mut k)), n) => {
                    k.modifiers |= KeyModifiers::ALT;
                    Parsed::Event(Some(Event::Key(k)), n + 1)
                }
                Parsed::Event(other, n) => Parsed::Event(other, n + 1),
                Parsed::Incomplete => Parsed::Incomplete,
            },
        },
        b'\r' | b'\n' => Parsed::Event(Some(key(KeyCode::Enter, none)), 1),
        b'\t' => Parsed::Event(Some(key(KeyCode::Tab, none)), 1),
        0x7f | 0x08 => Parsed::Event(Some(key(KeyCode::Backspace, none)), 1),
        c @ 0x01..=0x1a => Parsed::Event(
            Some(key(KeyCode::Char((b'a' + c - 1) as char), KeyModifiers::CONTROL)),
            1,
        ),
        c if c < 0x20 => Parsed::Event(None, 1),
        _ => {
            let len = match b[0] {
                0x00..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => return Parsed::Event(None, 1),
            };
            if b.len() < len {
                return Parsed::Incomplete;
            }
            match std::str::from_utf8(&b[..len]).ok().and_then(|s| s.chars().next()) {
                Some(c) => {
                    let mods = if c.is_uppercase() { KeyModifiers::SHIFT } else { none };
                    Parsed::Event(Some(key(KeyCode::Char(c), mods)), len)
                }
                None => Parsed::Event(None, 1),
            }
        }
    }
}

fn cursor_key(c: u8) -> Option<KeyCode> {
    Some(match c {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        _ => return None,
    })
}

/// `ESC [ params final`: cursor keys, `~` keys, Shift-Tab and SGR mouse reports.
fn parse_csi(b: &[u8]) -> Parsed {
    let none = KeyModifiers::NONE;
    let Some(end) = b.iter().skip(2).position(|c| (0x40..=0x7e).contains(c)).map(|p| p + 2) else {
        return if b.len() > 32 {
            Parsed::Event(None, b.len())
        } else {
            Parsed::Incomplete
        };
    };
    let params = &b[2..end];
    let fin = b[end];
    let n = end + 1;
    let nums: Vec<u16> = std::str::from_utf8(params.strip_prefix(b"<").unwrap_or(params))
        .unwrap_or("")
        .split(';')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    if params.first() == Some(&b'<') && (fin == b'M' || fin == b'm') {
        return Parsed::Event(sgr_mouse(&nums, fin == b'M'), n);
    }
    let ev = match fin {
        b'Z' => Some(key(KeyCode::BackTab, KeyModifiers::SHIFT)),
        b'~' => match nums.first() {
            Some(1) | Some(7) => Some(key(KeyCode::Home, none)),
            Some(4) | Some(8) => Some(key(KeyCode::End, none)),
            Some(3) => Some(key(KeyCode::Delete, none)),
            Some(5) => Some(key(KeyCode::PageUp, none)),
            Some(6) => Some(key(KeyCode::PageDown, none)),
            _ => None,
        },
        c => cursor_key(c).map(|k| key(k, none)),
    };
    Parsed::Event(ev, n)
}

/// `ESC [ < button ; column ; row M` (press) or `m` (release); columns and rows count from 1.
fn sgr_mouse(nums: &[u16], press: bool) -> Option<Event> {
    let (&button, &col, &row) = (nums.first()?, nums.get(1)?, nums.get(2)?);
    let kind = match (button & 0b1100_0011, press) {
        (0, true) => MouseEventKind::Down(MouseButton::Left),
        (1, true) => MouseEventKind::Down(MouseButton::Middle),
        (2, true) => MouseEventKind::Down(MouseButton::Right),
        (0, false) => MouseEventKind::Up(MouseButton::Left),
        (64, _) => MouseEventKind::ScrollUp,
        (65, _) => MouseEventKind::ScrollDown,
        _ => return None,
    };
    Some(Event::Mouse(MouseEvent {
        kind,
        column: col.saturating_sub(1),
        row: row.saturating_sub(1),
        modifiers: KeyModifiers::NONE,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(bytes: &[u8]) -> Vec<(KeyCode, KeyModifiers)> {
        InputParser::default()
            .feed(bytes)
            .into_iter()
            .filter_map(|e| match e {
                Event::Key(k) => Some((k.code, k.modifiers)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn keys_the_app_uses() {
        let n = KeyModifiers::NONE;
        assert_eq!(
            codes(b"jG\r"),
            vec![
                (KeyCode::Char('j'), n),
                (KeyCode::Char('G'), KeyModifiers::SHIFT),
                (KeyCode::Enter, n)
            ]
        );
        assert_eq!(
            codes(b"\x1b[A\x1b[B\x1bOC\x1b[D"),
            vec![
                (KeyCode::Up, n),
                (KeyCode::Down, n),
                (KeyCode::Right, n),
                (KeyCode::Left, n)
            ]
        );
        assert_eq!(
            codes(b"\x1b[5~\x1b[6~\x1b[H\x1b[4~\x1b[Z"),
            vec![
                (KeyCode::PageUp, n),
                (KeyCode::PageDown, n),
                (KeyCode::Home, n),
                (KeyCode::End, n),
                (KeyCode::BackTab, KeyModifiers::SHIFT)
            ]
        );
        assert_eq!(
            codes(b"\x03\x7f\t\x1b"),
            vec![
                (KeyCode::Char('c'), KeyModifiers::CONTROL),
                (KeyCode::Backspace, n),
                (KeyCode::Tab, n),
                (KeyCode::Esc, n)
            ]
        );
        assert_eq!(
            codes("é\x1bx".as_bytes()),
            vec![(KeyCode::Char('é'), n), (KeyCode::Char('x'), KeyModifiers::ALT)]
        );
    }

    #[test]
    fn sequences_split_across_chunks_and_mouse_reports() {
        let mut p = InputParser::default();
        assert!(p.feed(b"\x1b[").is_empty());
        assert_eq!(p.feed(b"B").len(), 1);
        assert!(p.feed(&"é".as_bytes()[..1]).is_empty());
        assert_eq!(p.feed(&"é".as_bytes()[1..]).len(), 1);
        let ev = p.feed(b"\x1b[<0;12;5M\x1b[<65;1;1M");
        assert!(matches!(
            ev[0],
            Event::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: 11,
                row: 4,
                ..
            })
        ));
        assert!(matches!(
            ev[1],
            Event::Mouse(MouseEvent {
                kind: MouseEventKind::ScrollDown,
                ..
            })
        ));
    }

    #[test]
    fn garbage_never_panics_and_is_bounded() {
        let mut p = InputParser::default();
        for chunk in [
            &b"\x1b[99999999999999999999;;;;x"[..],
            b"\xff\xfe\x00\x1b[<;;M",
            &[0x1b, b'['].repeat(100),
        ] {
            let _ = p.feed(chunk);
        }
        assert!(p.pending.len() <= 64);
    }
}
