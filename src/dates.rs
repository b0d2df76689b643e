//! Dates as the catalogue keeps them (milliseconds since the Unix epoch, UTC) to and from the
//! calendar: history files name days, reports print them.

/// Milliseconds since the epoch from `2019-01-01`, `2019-01-01T10:00:00`, or a number of seconds
/// or milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        // Seconds below 10^11 (until the year 5138), milliseconds above; a time that does not
        // fit in milliseconds (a huge negative number) is no time (issue 37).
        return if n < 100_000_000_000 {
            n.checked_mul(1000)
        } else {
            Some(n)
        };
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

/// (year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` (UTC) of milliseconds since the epoch.
pub fn date_of(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_as_the_calendar_has_them() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_577_664_000_000), "2019-12-30");
        assert_eq!(date_of(951_782_400_000), "2000-02-29");
        assert_eq!(date_of(parse_time("1999-12-31").unwrap()), "1999-12-31");
    }

    #[test]
    fn dates_and_numbers_become_milliseconds() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time("2019-01-01"), Some(1_546_300_800_000));
        assert_eq!(parse_time("2019-01-01T00:00:10Z"), Some(1_546_300_810_000));
        assert_eq!(parse_time("1546300800"), Some(1_546_300_800_000));
        assert_eq!(parse_time("1546300800000"), Some(1_546_300_800_000));
        assert_eq!(parse_time("2019-13-01"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("-9223372036854775808"), None, "does not overflow");
        assert_eq!(parse_time("-1"), Some(-1000));
    }
}
