//! Connecting: what a PostgreSQL `--db` looks like, the URL without its password for every
//! message, and a connection that comes back after the server went away.

use postgres::{Client, NoTls};

use crate::{Error, Result};

/// True when `db` names a PostgreSQL database (`postgres://...` or `postgresql://...`) rather
/// than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The URL with any password replaced by `***`, for messages and logs: the one in the user-info
/// part (`postgres://u:pw@h/db`) and any `password=` parameter (`?host=/tmp&password=pw`).
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let (head, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (info, host) = authority.split_at(at);
            match info.find(':') {
                Some(c) => format!("{}:***{host}", &info[..c]),
                None => authority.to_string(),
            }
        }
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{head}{authority}{tail}")
}

/// `text` with every password that `db` carries (as written and percent-decoded) replaced by
/// `***`: the last gate before an error reaches the terminal, whatever put the URL into it.
pub fn scrub(text: &str, db: &str) -> String {
    if !is_url(db) {
        return text.to_string();
    }
    let redacted = redact(db);
    let mut out = text.replace(db, &redacted);
    for secret in passwords(db) {
        for form in [crate::text::percent_decode(&secret), secret] {
            if !form.is_empty() {
                out = out.replace(&form, "***");
            }
        }
    }
    out
}

/// The passwords in a URL: the user-info one and any `password=` parameter.
fn passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if let Some((info, _)) = authority.rsplit_once('@')
        && let Some((_, pw)) = info.split_once(':')
    {
        found.push(pw.to_string());
    }
    if let Some((_, query)) = url.split_once('?') {
        for kv in query.split('&') {
            if let Some((k, v)) = kv.split_once('=')
                && k.eq_ignore_ascii_case("password")
            {
                found.push(v.to_string());
            }
        }
    }
    found
}

/// How a `--db` value is named in messages and logs: a file's path, or a URL without its password.
pub fn display_db(db: &std::path::Path) -> String {
    let text = db.to_string_lossy();
    if is_url(&text) {
        redact(&text)
    } else {
        db.display().to_string()
    }
}

/// Connects, naming the server (without its password) when that fails.
pub fn connect(url: &str) -> Result<Client> {
    Client::connect(url, NoTls).map_err(|e| {
        Error::Invalid(format!(
            "{}: cannot connect to PostgreSQL ({}); check the URL, that the server runs, and docs/postgres.md",
            redact(url),
            crate::error::postgres_detail(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths_and_passwords_hidden() {
        assert!(is_url("postgres://u@h/db"));
        assert!(is_url("postgresql:///db?host=/tmp"));
        assert!(!is_url("catalog.db"));
        assert!(!is_url("./postgres://x"));
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres://lookbook:s3cretPW%21@127.0.0.1:5432/shop"),
            "postgres://lookbook:***@127.0.0.1:5432/shop"
        );
        assert_eq!(redact("postgres://u:p@ss:w@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("postgresql:///db?host=/tmp&password=s3cret&sslmode=disable"),
            "postgresql:///db?host=/tmp&password=***&sslmode=disable"
        );
        assert_eq!(redact("postgres://h/db?PASSWORD=x"), "postgres://h/db?PASSWORD=***");
        assert_eq!(
            redact("postgres://u:pw@h?password=x"),
            "postgres://u:***@h?password=***"
        );
        let url = "postgres://lookbook:s3cretPW%21@h/db?password=other";
        assert_eq!(
            scrub(&format!("{url}: failed; s3cretPW! and other leaked"), url),
            "postgres://lookbook:***@h/db?password=***: failed; *** and *** leaked"
        );
        assert_eq!(scrub("catalog.db: fine", "catalog.db"), "catalog.db: fine");
    }
}
