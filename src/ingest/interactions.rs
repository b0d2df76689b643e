//! A shop's history into events, likes and shoppers: a generic
//! `user,product,time[,kind][,count][,price]` CSV (the product by any of its shop ids, SKUs or
//! numbers), a likes file `user,product,time,weight`, H&M's `transactions_train.csv`
//! (`t_dat,customer_id,article_id,price,sales_channel_id`, tens of millions of rows), and
//! shoppers' attributes (`customer_id,age,gender`, H&M's `customers.csv`). Files are streamed
//! line by line and written in batches, so memory stays bounded whatever their length.
//!
//! Every purchase, cart and view row becomes one event (a product bought twice is two events),
//! and identical rows of one file are told apart by their order, so importing the same file
//! twice adds nothing. A row with a weight (or a kind of `like`/`dislike`) is a like or dislike,
//! as the app records them. Unknown products are counted and reported, not fatal.

use serde::Serialize;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use crate::catalog::sql::Db;
use crate::catalog::{Catalog, Event, EventKind, Shopper};
use crate::{Error, Progress, Result};

/// The weight of a like row without one.
pub const LIKE_WEIGHT: f64 = 1.0;
/// Rows written per transaction.
const BATCH: usize = 20_000;
/// Users remembered between batches before the memo is cleared (a customer seen again is then
/// looked up in the catalogue): bounds memory on files with millions of customers.
const USER_MEMO: usize = 200_000;

/// What an interactions import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InteractionsReport {
    /// Data rows read.
    pub rows: usize,
    /// Events stored (purchases, carts, views).
    pub events: usize,
    /// Event rows that were stored already (the same file imported again).
    pub already_stored: usize,
    /// Likes and dislikes written.
    pub likes: usize,
    /// Users created.
    pub new_users: usize,
    /// Rows whose product is not in the catalogue.
    pub unknown_products: usize,
    /// A few of those products, to look for.
    pub unknown_examples: Vec<String>,
    /// Rows that could not be read: (line, why), the first few.
    pub bad_rows: Vec<(usize, String)>,
    /// All rows that could not be read.
    pub bad_row_count: usize,
}

impl InteractionsReport {
    fn bad(&mut self, line: usize, why: String) {
        note_bad(&mut self.bad_rows, &mut self.bad_row_count, line, why);
    }
}

/// Rows that could not be read and reported one by one, the rest counted.
const BAD_ROWS_SHOWN: usize = 20;

/// Counts a bad row and keeps the first [`BAD_ROWS_SHOWN`] with why.
fn note_bad(rows: &mut Vec<(usize, String)>, count: &mut usize, line: usize, why: String) {
    *count += 1;
    if rows.len() < BAD_ROWS_SHOWN {
        rows.push((line, why));
    }
}

/// What a shoppers import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShoppersReport {
    /// Data rows read.
    pub rows: usize,
    /// Shoppers whose age or gender was stored.
    pub shoppers: usize,
    /// Users created.
    pub new_users: usize,
    /// Rows that could not be read: (line, why), the first few.
    pub bad_rows: Vec<(usize, String)>,
    /// All rows that could not be read.
    pub bad_row_count: usize,
}

/// The columns of the two shapes.
struct Columns {
    user: usize,
    product: usize,
    time: Option<usize>,
    weight: Option<usize>,
    kind: Option<usize>,
    count: Option<usize>,
    price: Option<usize>,
}

/// The position of the first header cell named like one of `names`.
fn find(header: &[String], names: &[&str]) -> Option<usize> {
    header.iter().position(|h| {
        names.iter().any(|n| {
            h.trim()
                .trim_start_matches('\u{feff}')
                .trim_matches('"')
                .eq_ignore_ascii_case(n)
        })
    })
}

const USER_COLUMNS: &[&str] = &["user", "customer_id", "user_id", "customer", "shopper"];

fn columns(path: &Path, header: &[String]) -> Result<Columns> {
    let find = |names: &[&str]| find(header, names);
    let user = find(USER_COLUMNS);
    let product = find(&["product", "article_id", "product_id", "sku", "item", "item_id"]);
    match (user, product) {
        (Some(user), Some(product)) => Ok(Columns {
            user,
            product,
            time: find(&["time", "t_dat", "at", "timestamp", "date"]),
            weight: find(&["weight"]),
            kind: find(&["kind", "event", "event_type", "type", "action"]),
            count: find(&["count", "quantity", "qty"]),
            price: find(&["price", "amount"]),
        }),
        _ if find(&["age", "gender"]).is_some() => Err(Error::Metadata {
            path: path.into(),
            message: "this looks like a shoppers file (age, gender); import it with `--customers FILE`".into(),
        }),
        _ => Err(Error::Metadata {
            path: path.into(),
            message: "expected a header with user and product columns (`user,product,time[,kind][,count][,price]`, `user,product,time,weight` for likes, or H&M's `t_dat,customer_id,article_id,...`)".into(),
        }),
    }
}

/// One row as it will be stored: an event, or a like or dislike (weight).
enum Fact {
    Event {
        kind: EventKind,
        count: u32,
        price: Option<f64>,
    },
    Feedback(f64),
}

/// A data row: its line number as an editor shows it, and its text.
type Line = Result<(usize, String)>;

/// A file's header cells, and its rows after the header (blank ones skipped).
fn open_rows(path: &Path, what: &str) -> Result<(Vec<String>, impl Iterator<Item = Line>)> {
    // A regular file of any length (it is streamed, not read whole).
    crate::files::check_regular(path, u64::MAX, what)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let header_line = match lines.next() {
        Some(l) => l.map_err(|e| Error::io(path, e))?,
        None => {
            return Err(Error::Metadata {
                path: path.into(),
                message: "empty file, expected a header row".into(),
            });
        }
    };
    let header = header_line.split(',').map(str::to_string).collect();
    let owned = path.to_path_buf();
    let rows = lines
        .enumerate()
        .map(move |(i, l)| l.map(|l| (i + 2, l)).map_err(|e| Error::io(&owned, e)))
        .filter(|r| r.as_ref().map_or(true, |(_, l)| !l.trim().is_empty()));
    Ok((header, rows))
}

/// Reads `path` into events, likes and users, `BATCH` rows a transaction.
pub fn import(catalog: &mut Catalog, path: &Path, progress: &dyn Progress) -> Result<InteractionsReport> {
    let (header, rows) = open_rows(path, "interactions file")?;
    let cols = columns(path, &header)?;
    // Every way a row may name a product, to its id.
    let mut products: HashMap<String, i64> = HashMap::new();
    for p in catalog.products()? {
        products.insert(p.id.to_string(), p.id);
        for v in &p.variants {
            products.entry(v.sku.clone()).or_insert(p.id);
        }
        if let Some(s) = &p.shop_id {
            products.insert(s.clone(), p.id);
        }
    }
    let mut users: HashMap<String, i64> = HashMap::new();
    let mut report = InteractionsReport::default();
    let mut batch: Vec<(String, i64, i64, Fact, u32)> = Vec::with_capacity(BATCH);
    // How often each (user, product, kind, time) came before in this file: identical rows are
    // real (two bought at once) and are told apart by this order. A time-sorted file (H&M's is)
    // only needs the rows of the current time.
    let mut seen: HashMap<(String, i64, EventKind, i64), u32> = HashMap::new();
    let (mut sorted, mut last_at) = (true, i64::MIN);
    progress.start("importing interactions", 0);
    let now = crate::now_ms();
    for row in rows {
        let (line_no, line) = row?;
        report.rows += 1;
        let fields: Vec<&str> = line.split(',').collect();
        let get = |c: usize| fields.get(c).map(|s| s.trim().trim_matches('"')).unwrap_or("");
        let (user, product) = (get(cols.user), get(cols.product));
        if let Err(e) = crate::catalog::check_user_name(user) {
            report.bad(line_no, e.to_string());
            continue;
        }
        let Some(&pid) = products.get(product) else {
            report.unknown_products += 1;
            if report.unknown_examples.len() < 10 && !report.unknown_examples.iter().any(|x| x == product) {
                report
                    .unknown_examples
                    .push(crate::text::clip(product, 40).into_owned());
            }
            continue;
        };
        let at = match cols.time.map(&get) {
            Some(t) if !t.is_empty() => match crate::dates::parse_time(t) {
                Some(ms) => ms,
                None => {
                    report.bad(
                        line_no,
                        format!("time {:?} is not a date or a number", crate::text::clip(t, 30)),
                    );
                    continue;
                }
            },
            _ => now,
        };
        let fact = match fact(&cols, &get) {
            Ok(f) => f,
            Err(why) => {
                report.bad(line_no, why);
                continue;
            }
        };
        let seq = match &fact {
            Fact::Event { kind, .. } => {
                if at < last_at {
                    sorted = false;
                } else if at > last_at && sorted {
                    seen.clear();
                }
                last_at = last_at.max(at);
                let n = seen.entry((user.to_string(), pid, *kind, at)).or_default();
                *n += 1;
                *n - 1
            }
            Fact::Feedback(_) => 0,
        };
        batch.push((user.to_string(), pid, at, fact, seq));
        if batch.len() >= BATCH {
            write(catalog, &mut batch, &mut users, &mut report)?;
            progress.advance(BATCH);
        }
    }
    let rest = batch.len();
    write(catalog, &mut batch, &mut users, &mut report)?;
    progress.advance(rest);
    progress.finish();
    Ok(report)
}

/// What a row records: its kind (a purchase without one), count and price, or its weight.
fn fact<'a>(cols: &Columns, get: &impl Fn(usize) -> &'a str) -> std::result::Result<Fact, String> {
    let kind = cols.kind.map(get).filter(|k| !k.is_empty());
    let weight = cols.weight.map(get).filter(|w| !w.is_empty());
    let like = match kind.map(|k| k.to_ascii_lowercase()) {
        Some(k) if k == "like" => Some(LIKE_WEIGHT),
        Some(k) if k == "dislike" => Some(-LIKE_WEIGHT),
        _ => None,
    };
    // A file with weights and no kinds is a file of likes: a row without a weight is a like.
    if like.is_some() || (cols.weight.is_some() && kind.is_none()) {
        return match weight {
            Some(w) => match w.parse::<f64>() {
                Ok(x) if x.is_finite() && x != 0.0 => Ok(Fact::Feedback(x.clamp(-1.0, 1.0))),
                _ => Err(format!(
                    "weight {:?} is not a number other than 0",
                    crate::text::clip(w, 30)
                )),
            },
            None => Ok(Fact::Feedback(like.unwrap_or(LIKE_WEIGHT))),
        };
    }
    let kind = match kind {
        Some(k) => EventKind::parse(k).ok_or_else(|| {
            format!(
                "kind {:?} is not purchase, cart, view, like or dislike",
                crate::text::clip(k, 30)
            )
        })?,
        None => EventKind::Purchase,
    };
    let count = match cols.count.map(get).filter(|c| !c.is_empty()) {
        Some(c) => match c.parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(format!(
                    "count {:?} is not a whole number from 1",
                    crate::text::clip(c, 30)
                ));
            }
        },
        None => 1,
    };
    let price = match cols.price.map(get).filter(|p| !p.is_empty()) {
        Some(p) => match p.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Some(x),
            _ => return Err(format!("price {:?} is not a number from 0", crate::text::clip(p, 30))),
        },
        None => None,
    };
    Ok(Fact::Event { kind, count, price })
}

/// The user's id, made if new (remembered in `users`).
fn user_id(tx: &mut impl Db, users: &mut HashMap<String, i64>, name: &str, new_users: &mut usize) -> Result<i64> {
    if let Some(&id) = users.get(name) {
        return Ok(id);
    }
    let id: i64 = match crate::catalog::insert_user(tx, name)? {
        Some(id) => {
            *new_users += 1;
            id
        }
        None => crate::catalog::user_id_in(tx, name)?
            .ok_or_else(|| Error::NotFound(format!("user {name:?} vanished while being created")))?,
    };
    users.insert(name.to_string(), id);
    Ok(id)
}

/// One batch in one transaction: users made as needed, events added unless stored already,
/// likes set (the later time kept).
fn write(
    catalog: &mut Catalog,
    batch: &mut Vec<(String, i64, i64, Fact, u32)>,
    users: &mut HashMap<String, i64>,
    report: &mut InteractionsReport,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    if users.len() > USER_MEMO {
        users.clear();
    }
    let mut tx = catalog.tx()?;
    for (user, pid, at, fact, seq) in batch.drain(..) {
        let uid = user_id(&mut tx, users, &user, &mut report.new_users)?;
        match fact {
            Fact::Event { kind, count, price } => {
                let e = Event {
                    user: uid,
                    product: pid,
                    kind,
                    at,
                    count,
                    price,
                };
                if crate::catalog::insert_event(&mut tx, &e, seq)? {
                    report.events += 1;
                } else {
                    report.already_stored += 1;
                }
            }
            Fact::Feedback(weight) => {
                crate::catalog::upsert_feedback(&mut tx, uid, pid, weight, at)?;
                report.likes += 1;
            }
        }
    }
    tx.commit()
}

/// Reads shoppers' ages and genders (`customer_id,age,gender`, H&M's `customers.csv`), making
/// users as needed, `BATCH` rows a transaction.
pub fn import_shoppers(catalog: &mut Catalog, path: &Path, progress: &dyn Progress) -> Result<ShoppersReport> {
    let (header, rows) = open_rows(path, "shoppers file")?;
    let (Some(user_col), age_col, gender_col) = (
        find(&header, USER_COLUMNS),
        find(&header, &["age"]),
        find(&header, &["gender", "sex"]),
    ) else {
        return Err(Error::Metadata {
            path: path.into(),
            message: "expected a header with a customer column and age or gender (`customer_id,age,gender`)".into(),
        });
    };
    if age_col.is_none() && gender_col.is_none() {
        return Err(Error::Metadata {
            path: path.into(),
            message: "no age or gender column: nothing to import (`customer_id,age,gender`)".into(),
        });
    }
    let mut report = ShoppersReport::default();
    let mut users: HashMap<String, i64> = HashMap::new();
    let mut batch: Vec<(String, Shopper)> = Vec::with_capacity(BATCH);
    progress.start("importing shoppers", 0);
    let flush = |catalog: &mut Catalog,
                 batch: &mut Vec<(String, Shopper)>,
                 users: &mut HashMap<String, i64>,
                 report: &mut ShoppersReport|
     -> Result<()> {
        if users.len() > USER_MEMO {
            users.clear();
        }
        let mut tx = catalog.tx()?;
        for (name, s) in batch.drain(..) {
            let uid = user_id(&mut tx, users, &name, &mut report.new_users)?;
            crate::catalog::set_shopper(&mut tx, uid, &s)?;
            report.shoppers += 1;
        }
        tx.commit()
    };
    for row in rows {
        let (line_no, line) = row?;
        report.rows += 1;
        let fields: Vec<&str> = line.split(',').collect();
        let get = |c: Option<usize>| {
            c.and_then(|c| fields.get(c))
                .map(|s| s.trim().trim_matches('"'))
                .unwrap_or("")
        };
        let mut bad = |why: String| note_bad(&mut report.bad_rows, &mut report.bad_row_count, line_no, why);
        let user = match crate::catalog::check_user_name(get(Some(user_col))) {
            Ok(u) => u.to_string(),
            Err(e) => {
                bad(e.to_string());
                continue;
            }
        };
        let age = match get(age_col) {
            "" => None,
            a => match a.parse::<f64>() {
                Ok(x) if (0.0..=130.0).contains(&x) => Some(x as u32),
                _ => {
                    bad(format!("age {:?} is not a number of years", crate::text::clip(a, 30)));
                    continue;
                }
            },
        };
        let gender = get(gender_col);
        if gender.chars().count() > 32 || gender.chars().any(crate::text::is_unsafe) {
            bad(format!(
                "gender {:?} is not a short printable word",
                crate::text::clip(gender, 33)
            ));
            continue;
        }
        batch.push((
            user,
            Shopper {
                age,
                gender: gender.to_string(),
            },
        ));
        if batch.len() >= BATCH {
            flush(catalog, &mut batch, &mut users, &mut report)?;
            progress.advance(BATCH);
        }
    }
    let rest = batch.len();
    flush(catalog, &mut batch, &mut users, &mut report)?;
    progress.advance(rest);
    progress.finish();
    Ok(report)
}
