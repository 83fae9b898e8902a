//! UTC wall-clock stamps for log lines and events (RFC 3339), without a date crate.

use std::time::Duration;

/// `t` since the Unix epoch as RFC 3339 UTC with `digits` (0 to 9) fractional digits:
/// `2026-12-03T15:04:05.123Z`.
pub fn rfc3339(t: Duration, digits: usize) -> String {
    let secs = t.as_secs();
    let days = i64::try_from(secs / 86400).unwrap_or(0);
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut s = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let digits = digits.min(9);
    if digits > 0 {
        let frac = format!("{:09}", t.subsec_nanos());
        s.push('.');
        s.push_str(&frac[..digits]);
    }
    s.push('Z');
    s
}

/// Now, as [`rfc3339`] gives it.
pub fn now(digits: usize) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(t, digits)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use std::time::Duration;

    #[test]
    fn stamps_are_rfc3339_utc() {
        let ms = |s: u64, m: u32| Duration::new(s, m * 1_000_000);
        assert_eq!(rfc3339(ms(0, 0), 3), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(ms(951_782_400, 5), 3), "2000-02-29T00:00:00.005Z");
        assert_eq!(
            rfc3339(ms(1_796_309_045, 123), 3),
            "2026-12-03T14:44:05.123Z"
        );
        assert_eq!(
            rfc3339(Duration::new(1_796_309_045, 123_456_789), 6),
            "2026-12-03T14:44:05.123456Z"
        );
        assert_eq!(rfc3339(ms(0, 0), 0), "1970-01-01T00:00:00Z");
    }
}
