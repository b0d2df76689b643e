//! A loopback HTTP server for the photo download tests: serves a folder, with routes that
//! misbehave as real CDNs do (404, slow, oversized, not an image, a redirect loop, a redirect to
//! another port,
//! `file://`, a 503 that clears on retry), ETags and 304s. Every connection is bounded in time.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server; stops when dropped.
pub struct HttpServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// "METHOD path status" of every request served, in order.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl HttpServer {
    /// Serves `root` on a free loopback port.
    pub fn serve(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let flaky = Arc::new(Mutex::new(HashSet::new()));
        let (stop2, log2) = (Arc::clone(&stop), Arc::clone(&log));
        std::thread::spawn(move || {
            for conn in listener.incoming().take(10_000) {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, log, flaky) = (root.clone(), Arc::clone(&log2), Arc::clone(&flaky));
                std::thread::spawn(move || {
                    let _ = handle(conn, &root, &log, &flaky);
                });
            }
        });
        HttpServer { port, stop, log }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests served so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn etag_of(bytes: &[u8]) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(1099511628211);
    }
    format!("\"{h:x}\"")
}

fn handle(
    mut conn: TcpStream,
    root: &std::path::Path,
    log: &Mutex<Vec<String>>,
    flaky: &Mutex<HashSet<String>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut if_none_match = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("if-none-match")
        {
            if_none_match = Some(v.trim().to_string());
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let clean = path.split('?').next().unwrap_or("").to_string();
    let mut respond = |status: u16, reason: &str, headers: &str, body: &[u8]| -> std::io::Result<()> {
        log.lock().unwrap().push(format!("GET {path} {status}"));
        write!(
            conn,
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
            body.len()
        )?;
        conn.write_all(body)
    };
    if clean.starts_with("/404/") {
        return respond(404, "Not Found", "", b"gone");
    }
    if clean.starts_with("/text/") {
        return respond(200, "OK", "Content-Type: text/plain\r\n", b"this is not a photo");
    }
    if clean.starts_with("/loop/") {
        return respond(302, "Found", &format!("Location: {clean}\r\n"), b"");
    }
    if let Some(rest) = clean.strip_prefix("/redirect-port/") {
        // `/redirect-port/PORT/PATH` sends the client to PATH on the same host, another port.
        let (port, path) = rest.split_once('/').unwrap_or((rest, ""));
        return respond(
            302,
            "Found",
            &format!("Location: http://127.0.0.1:{port}/{path}\r\n"),
            b"",
        );
    }
    if clean.starts_with("/to-file/") {
        return respond(302, "Found", "Location: file:///etc/passwd\r\n", b"");
    }
    if clean.starts_with("/big/") {
        log.lock().unwrap().push(format!("GET {path} 200"));
        let size: u64 = 80 << 20;
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        )?;
        let block = vec![0u8; 1 << 16];
        for _ in 0..(size >> 16) {
            if conn.write_all(&block).is_err() {
                break; // the client stopped reading at its limit
            }
        }
        return Ok(());
    }
    let mut rel = clean.trim_start_matches('/').to_string();
    if let Some(rest) = rel.strip_prefix("slow/") {
        std::thread::sleep(Duration::from_millis(1500));
        rel = rest.to_string();
    }
    if let Some(rest) = rel.strip_prefix("flaky/") {
        let first_time = flaky.lock().unwrap().insert(rest.to_string());
        if first_time {
            return respond(503, "Service Unavailable", "Retry-After: 1\r\n", b"busy");
        }
        rel = rest.to_string();
    }
    if rel.contains("..") {
        return respond(400, "Bad Request", "", b"");
    }
    match std::fs::read(root.join(&rel)) {
        Ok(bytes) => {
            let tag = etag_of(&bytes);
            if if_none_match.as_deref() == Some(tag.as_str()) {
                return respond(304, "Not Modified", &format!("ETag: {tag}\r\n"), b"");
            }
            respond(
                200,
                "OK",
                &format!("ETag: {tag}\r\nContent-Type: image/jpeg\r\n"),
                &bytes,
            )
        }
        Err(_) => respond(404, "Not Found", "", b"no such file"),
    }
}
