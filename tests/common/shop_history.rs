//! A small shop history over the mini fixture's products, for the feed's tests in both stores.

use super::Fixture;
use std::fmt::Write;

// Products of the mini fixture (tests/fixtures/mini/styles.csv).
pub const TSHIRT: i64 = 1614;
pub const BASIC_TEE: i64 = 2157;
pub const JEANS: i64 = 7191;
pub const WATCH: i64 = 4665;
pub const SUNGLASSES: i64 = 8938;

/// A history: twelve shoppers buy a T-shirt then jeans the next day (bought together), half of
/// them buy the basic tee again a week later, one buys a watch; in the last days everybody
/// buys the sunglasses (what sells now); `ann` has bought only the T-shirt; `bob` bought two
/// of the basic tee at once (two identical rows) and the watch.
pub fn history(fx: &Fixture) -> std::path::PathBuf {
    let mut csv = String::from("t_dat,customer_id,article_id,price,sales_channel_id\n");
    for s in 0..12 {
        let day = 1 + s % 5;
        writeln!(csv, "2024-01-{day:02},s{s},{TSHIRT},0.02,2").unwrap();
        writeln!(csv, "2024-01-{:02},s{s},{JEANS},0.03,2", day + 1).unwrap();
        if s % 2 == 0 {
            writeln!(csv, "2024-01-{:02},s{s},{BASIC_TEE},0.01,1", day + 2).unwrap();
            writeln!(csv, "2024-01-{:02},s{s},{BASIC_TEE},0.01,1", day + 9).unwrap();
        }
    }
    writeln!(csv, "2024-01-12,s1,{WATCH},0.2,2").unwrap();
    writeln!(csv, "2024-01-14,ann,{TSHIRT},0.02,2").unwrap();
    writeln!(csv, "2024-01-15,bob,{BASIC_TEE},0.01,2").unwrap();
    writeln!(csv, "2024-01-15,bob,{BASIC_TEE},0.01,2").unwrap();
    writeln!(csv, "2024-01-15,bob,{WATCH},0.2,2").unwrap();
    for s in 0..12 {
        writeln!(csv, "2024-01-{:02},s{s},{SUNGLASSES},0.05,2", 16 + s % 4).unwrap();
    }
    let path = fx.path("transactions.csv");
    std::fs::write(&path, csv).unwrap();
    path
}
