//! Dates as the catalogue keeps them (milliseconds since the Unix epoch, UTC) to and from the
//! calendar: history files name days, reports print them.

/// Milliseconds since the epoch from `2019-01-01`, `2019-01-01T10:00[:00[.123]]` with an optional
/// zone (`Z`, `+02:00`, `-0530`; none is UTC), or a number of seconds or milliseconds.
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
    let rest = t.get(10..)?;
    let ms = if rest.is_empty() { 0 } else { time_of_day(rest)? };
    Some((days * 86_400) * 1000 + ms)
}

/// Milliseconds from midnight UTC of `THH:MM[:SS[.fff]][Z|±HH[:MM]]` (or a space for the `T`):
/// a zone is applied, a fraction kept; anything else is no time, never a truncated one.
fn time_of_day(s: &str) -> Option<i64> {
    let s = s.strip_prefix('T').or_else(|| s.strip_prefix(' '))?;
    let two =
        |x: &str| -> Option<i64> { (x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit())).then(|| x.parse().ok())? };
    let (h, m) = (two(s.get(0..2)?)?, two(s.get(3..5)?)?);
    if s.as_bytes().get(2) != Some(&b':') || h > 23 || m > 59 {
        return None;
    }
    let mut rest = &s[5..];
    let mut ms = (h * 3600 + m * 60) * 1000;
    if let Some(r) = rest.strip_prefix(':') {
        let sec = two(r.get(0..2)?)?;
        if sec > 60 {
            return None;
        }
        ms += sec * 1000;
        rest = &r[2..];
        if let Some(f) = rest.strip_prefix('.') {
            let digits = f.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            // Milliseconds: the first three digits, padded (".5" is 500 ms).
            let frac: String = f[..digits].chars().chain("000".chars()).take(3).collect();
            ms += frac.parse::<i64>().ok()?;
            rest = &f[digits..];
        }
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = rest[1..].replace(':', "");
            let (oh, om) = match z.len() {
                2 => (two(&z)?, 0),
                4 => (two(&z[..2])?, two(&z[2..])?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    // Local time minus its offset is UTC.
    Some(ms - offset_min * 60_000)
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

    #[test]
    fn a_time_zone_or_a_fraction_is_applied_never_dropped() {
        let utc = parse_time("2026-12-06T01:00:00Z").unwrap();
        assert_eq!(parse_time("2026-12-06T01:00:00"), Some(utc), "no zone is UTC");
        assert_eq!(parse_time("2026-12-06 01:00:00"), Some(utc));
        assert_eq!(parse_time("2026-12-06T01:00"), Some(utc), "seconds may be left out");
        assert_eq!(parse_time("2026-12-06T01:00:00+02:00"), Some(utc - 2 * 3_600_000));
        assert_eq!(
            parse_time("2026-12-06T01:00:00-0530"),
            Some(utc + 5 * 3_600_000 + 30 * 60_000)
        );
        assert_eq!(parse_time("2026-12-06T01:00:00+01"), Some(utc - 3_600_000));
        assert_eq!(parse_time("2026-12-06T01:00:00.123Z"), Some(utc + 123));
        assert_eq!(parse_time("2026-12-06T01:00:00.5+00:00"), Some(utc + 500));
        for bad in [
            "2026-12-06T25:00:00",
            "2026-12-06T01:61:00",
            "2026-12-06T01:00:00+25:00",
            "2026-12-06T01:00:00 PST",
            "2026-12-06xyz",
            "2026-12-06T1",
            "2026-12-06T01:00:00.",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
