//! Hostile input, concurrent writers and signals (issue 10): each case is something a careless
//! user or an attacker did that once lost data, hung, or wrote to the terminal unsanitised.
//! Large inputs are built at test time; every loop is bounded in count and time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod concurrency;
mod escapes;
mod fetch_hosts;
mod foreign_db;
mod limits;
mod messages;
mod pipes;
mod prices;
mod prune;
mod signals;
