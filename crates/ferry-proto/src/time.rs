//! UTC calendar arithmetic for MDTM (RFC 3659 §2.3), MLSx `modify` facts and `ls -l` dates.
//!
//! Times are seconds since the Unix epoch (`i64`), always UTC: the protocol core reads no clock
//! and no time zone database; callers pass "now" in where it matters.

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Three-letter English month names, as `ls -l` prints them.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 for a civil date (proleptic Gregorian calendar).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl DateTime {
    /// Breaks seconds since the epoch down into a UTC date and time.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// Seconds since the epoch; `None` if a field is out of range.
    pub fn to_unix(&self) -> Option<i64> {
        let valid = (1..=12).contains(&self.month)
            && (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 61;
        valid.then(|| {
            days_from_civil(self.year, self.month, self.day) * 86_400
                + i64::from(self.hour) * 3600
                + i64::from(self.minute) * 60
                + i64::from(self.second)
        })
    }
}

/// The days of `month` (1 to 12) in `year`, proleptic Gregorian.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Formats a `time-val` as RFC 3659 §2.3 defines it: `YYYYMMDDHHMMSS`, UTC.
pub fn format_time_val(secs: i64) -> String {
    let mut text = String::with_capacity(14);
    write_time_val(&mut text, secs);
    text
}

/// Appends the `time-val` of [`format_time_val`] to `out`, digit by digit (MLSD writes one per
/// entry; `core::fmt` costs more than the date arithmetic).
pub fn write_time_val(out: &mut String, secs: i64) {
    use crate::listing::push_zeros;
    // Four digits of year, whatever the file system holds: times before year 0 or after 9999
    // are written as the first or last second those take.
    let first = days_from_civil(0, 1, 1) * 86_400;
    let last = days_from_civil(9999, 12, 31) * 86_400 + 86_399;
    let t = DateTime::from_unix(secs.clamp(first, last));
    push_zeros(out, u64::try_from(t.year).unwrap_or(0), 4);
    for field in [t.month, t.day, t.hour, t.minute, t.second] {
        push_zeros(out, u64::from(field), 2);
    }
}

/// Parses a `time-val` (RFC 3659 §2.3): `YYYYMMDDHHMMSS[.sss]`, UTC; fractions are dropped.
pub fn parse_time_val(text: &str) -> Option<i64> {
    let digits = text.split('.').next()?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| digits[range].parse::<u32>().ok();
    DateTime {
        year: i64::from(field(0..4)?),
        month: field(4..6)?,
        day: field(6..8)?,
        hour: field(8..10)?,
        minute: field(10..12)?,
        second: field(12..14)?,
    }
    .to_unix()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(format_time_val(0), "19700101000000");
        assert_eq!(format_time_val(1_795_563_060), "20261124233100");
        assert_eq!(format_time_val(951_782_400), "20000229000000");
    }

    #[test]
    fn round_trips_across_four_centuries() {
        let mut secs = -5_000_000_000_i64;
        while secs < 10_000_000_000 {
            let text = format_time_val(secs);
            assert_eq!(parse_time_val(&text), Some(secs), "{text}");
            secs += 7_777_777;
        }
    }

    #[test]
    fn rejects_malformed_time_vals() {
        assert_eq!(parse_time_val("2026112423310"), None);
        assert_eq!(parse_time_val("20261324233100"), None);
        assert_eq!(parse_time_val("2026112423310x"), None);
        assert_eq!(parse_time_val("20261124233100.123"), Some(1_795_563_060));
        // Days a month does not have.
        assert_eq!(parse_time_val("20230231000000"), None);
        assert_eq!(parse_time_val("20230431000000"), None);
        assert_eq!(parse_time_val("19000229000000"), None);
        assert!(parse_time_val("20000229000000").is_some());
        assert!(parse_time_val("20240229000000").is_some());
    }

    /// Times a file system may hold past the four-digit years are written as the nearest one.
    #[test]
    fn years_outside_0_to_9999_keep_four_digits() {
        let far = 400_000_000_000_i64;
        assert_eq!(format_time_val(far), "99991231235959");
        assert_eq!(format_time_val(-far), "00000101000000");
    }
}
