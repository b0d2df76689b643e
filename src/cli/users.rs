//! `lookbook users`: list, add or remove users.

use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

use super::out::{out, outln};
use super::print_json;
use super::table::render;
use lookbook::catalog::Catalog;

/// List, add or remove users.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<UsersAction>,
    /// JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `users` actions.
#[derive(clap::Subcommand, Debug)]
pub enum UsersAction {
    /// List users (the default).
    List,
    /// Add a user.
    Add {
        /// Name.
        name: String,
    },
    /// Remove a user and all their likes.
    Remove {
        /// Name.
        name: String,
    },
}

/// Runs `users`.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    let (action, json) = (a.action, a.json);
    let mut cat = Catalog::open_existing(db)?;
    match action.unwrap_or(UsersAction::List) {
        UsersAction::List => {
            let us = cat.users()?;
            if json {
                print_json(&us)?;
            } else if us.is_empty() {
                outln!("(no users yet; add one with `lookbook users add NAME`)");
            } else {
                let body: Vec<Vec<String>> = us
                    .iter()
                    .map(|u| vec![u.name.clone(), u.likes.to_string(), u.dislikes.to_string()])
                    .collect();
                out!("{}", render(&["user", "likes", "dislikes"], &body));
            }
        }
        UsersAction::Add { name } => {
            cat.add_user(&name)?;
            outln!("added user {name}");
        }
        UsersAction::Remove { name } => {
            let n = cat.remove_user(&name)?;
            outln!("removed user {name} and {n} likes/dislikes");
        }
    }
    Ok(ExitCode::SUCCESS)
}
