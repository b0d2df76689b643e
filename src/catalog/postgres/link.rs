//! A connection to a lookbook catalogue in PostgreSQL that reconnects by itself: opened
//! through `schema` (which checks or creates the schema), reconnected through `url`.

use postgres::Client;

use super::url::connect;
use crate::Result;

/// A PostgreSQL connection that comes back by itself after the server went away (a restart, a
/// network cut): a query on a closed connection fails, and the next use after that reconnects,
/// with a growing pause between tries while the server stays away. Nothing is retried behind
/// the caller's back, so a write either reports success or an error, never a false success.
pub struct Link {
    url: String,
    client: Client,
    /// When the last reconnect failed, and the pause before the next try.
    backoff: Option<(std::time::Instant, std::time::Duration)>,
}

impl Link {
    /// The longest pause between two reconnect tries.
    const MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

    /// Opens the lookbook catalogue at `url`, as `postgres::open` does.
    pub fn open(url: &str, create: bool) -> Result<Self> {
        Ok(Link {
            url: url.to_string(),
            client: super::schema::open(url, create)?,
            backoff: None,
        })
    }

    /// The client, reconnected first when the connection was found closed and the pause since
    /// the last failed try is over.
    pub fn client(&mut self) -> &mut Client {
        let due = self.backoff.is_none_or(|(at, pause)| at.elapsed() >= pause);
        if self.client.is_closed() && due {
            match connect(&self.url) {
                Ok(c) => {
                    self.client = c;
                    self.backoff = None;
                }
                Err(_) => {
                    let pause = self.backoff.map_or(std::time::Duration::from_millis(250), |(_, p)| {
                        (p * 2).min(Self::MAX_PAUSE)
                    });
                    self.backoff = Some((std::time::Instant::now(), pause));
                }
            }
        }
        &mut self.client
    }
}
