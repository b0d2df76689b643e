//! A shop's history into users and likes: a generic `user,product,time[,weight]` CSV (the
//! product by any of its shop ids, SKUs or numbers) or H&M's `transactions_train.csv`
//! (`t_dat,customer_id,article_id,price,sales_channel_id`, tens of millions of rows). The file is
//! streamed line by line and written in batches, so memory stays bounded whatever its length.
//!
//! A purchase counts as a like of weight [`PURCHASE_WEIGHT`]; buying a product again only moves
//! its time. Unknown products are counted and reported, not fatal.

use serde::Serialize;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use crate::catalog::Catalog;
use crate::catalog::sql::{Db, params};
use crate::{Error, Progress, Result};

/// The weight of a purchase: a like (a dislike is -1).
pub const PURCHASE_WEIGHT: f64 = 1.0;
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
    /// Likes written (a repeat purchase updates its like).
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

/// The columns of the two shapes.
struct Columns {
    user: usize,
    product: usize,
    time: Option<usize>,
    weight: Option<usize>,
}

fn columns(path: &Path, header: &[String]) -> Result<Columns> {
    let find = |names: &[&str]| {
        header.iter().position(|h| {
            names
                .iter()
                .any(|n| h.trim().trim_start_matches('\u{feff}').eq_ignore_ascii_case(n))
        })
    };
    let user = find(&["user", "customer_id", "user_id", "customer"]);
    let product = find(&["product", "article_id", "product_id", "sku", "item"]);
    match (user, product) {
        (Some(user), Some(product)) => Ok(Columns {
            user,
            product,
            time: find(&["time", "t_dat", "at", "timestamp", "date"]),
            weight: find(&["weight"]),
        }),
        _ => Err(Error::Metadata {
            path: path.into(),
            message: "expected a header with user and product columns (`user,product,time[,weight]`, or H&M's `t_dat,customer_id,article_id,...`)".into(),
        }),
    }
}

/// Milliseconds since the epoch from `2019-01-01`, `2019-01-01T10:00:00`, or a number of seconds
/// or milliseconds.
fn parse_time(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Some(if n < 100_000_000_000 { n * 1000 } else { n });
    }
    let date = t.get(..10)?;
    let mut parts = date.split('-');
    let (y, m, d): (i64, i64, i64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), then the time of day if given.
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = t
        .get(11..19)
        .and_then(|hms| {
            let mut p = hms.split(':').map(|x| x.parse::<i64>().ok());
            Some(p.next()?? * 3600 + p.next()?? * 60 + p.next()??)
        })
        .unwrap_or(0);
    Some((days * 86_400 + secs) * 1000)
}

/// Reads `path` into users and likes, `BATCH` rows a transaction.
pub fn import(catalog: &mut Catalog, path: &Path, progress: &dyn Progress) -> Result<InteractionsReport> {
    // A regular file of any length (it is streamed, not read whole).
    crate::files::check_regular(path, u64::MAX, "interactions file")?;
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
    let header: Vec<String> = header_line.split(',').map(str::to_string).collect();
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
    let mut batch: Vec<(String, i64, i64, f64)> = Vec::with_capacity(BATCH);
    progress.start("importing interactions", 0);
    let now = crate::now_ms();
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        report.rows += 1;
        let fields: Vec<&str> = line.split(',').collect();
        let get = |c: usize| fields.get(c).map(|s| s.trim().trim_matches('"')).unwrap_or("");
        let (user, product) = (get(cols.user), get(cols.product));
        let bad = |report: &mut InteractionsReport, why: String| {
            report.bad_row_count += 1;
            if report.bad_rows.len() < 20 {
                report.bad_rows.push((line_no, why));
            }
        };
        if let Err(e) = crate::catalog::check_user_name(user) {
            bad(&mut report, e.to_string());
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
            Some(t) if !t.is_empty() => match parse_time(t) {
                Some(ms) => ms,
                None => {
                    bad(
                        &mut report,
                        format!("time {:?} is not a date or a number", crate::text::clip(t, 30)),
                    );
                    continue;
                }
            },
            _ => now,
        };
        let weight = match cols.weight.map(&get) {
            Some(w) if !w.is_empty() => match w.parse::<f64>() {
                Ok(x) if x.is_finite() && x != 0.0 => x.clamp(-1.0, 1.0),
                _ => {
                    bad(
                        &mut report,
                        format!("weight {:?} is not a number other than 0", crate::text::clip(w, 30)),
                    );
                    continue;
                }
            },
            _ => PURCHASE_WEIGHT,
        };
        batch.push((user.to_string(), pid, at, weight));
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

/// One batch in one transaction: users made as needed, each (user, product) liked, the later
/// time kept.
fn write(
    catalog: &mut Catalog,
    batch: &mut Vec<(String, i64, i64, f64)>,
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
    for (user, pid, at, weight) in batch.drain(..) {
        let uid = match users.get(&user) {
            Some(&id) => id,
            None => {
                let created = tx.row(
                    "INSERT INTO users(name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING RETURNING id",
                    params![&user, crate::now_ms()],
                )?;
                let id: i64 = match created {
                    Some(r) => {
                        report.new_users += 1;
                        r.get(0)?
                    }
                    None => tx.scalar("SELECT id FROM users WHERE name = ?1", params![&user])?,
                };
                users.insert(user, id);
                id
            }
        };
        tx.execute(
            "INSERT INTO feedback(user_id, product_id, weight, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(user_id, product_id) DO UPDATE SET weight = excluded.weight,
                at = CASE WHEN excluded.at > feedback.at THEN excluded.at ELSE feedback.at END",
            params![uid, pid, weight, at],
        )?;
        report.likes += 1;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_numbers_become_milliseconds() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time("2019-01-01"), Some(1_546_300_800_000));
        assert_eq!(parse_time("2019-01-01T00:00:10Z"), Some(1_546_300_810_000));
        assert_eq!(parse_time("1546300800"), Some(1_546_300_800_000));
        assert_eq!(parse_time("1546300800000"), Some(1_546_300_800_000));
        assert_eq!(parse_time("2019-13-01"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
