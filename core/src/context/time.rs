//! `$context.requestTime`: the CLF request time (`dd/MMM/yyyy:HH:mm:ss +0000`), always UTC,
//! computed from epoch milliseconds the caller read from its clock.

/// A formatted CLF time: 26 ASCII bytes, `18/May/2025:21:08:50 +0000`. `Copy`, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTime([u8; 26]);

/// The last moment with a four-digit year (9999-12-31T23:59:59Z), in seconds; later times
/// are clamped to it so the text keeps its fixed width.
const MAX_SECS: u64 = 253_402_300_799;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl RequestTime {
    /// Formats `epoch_ms` (milliseconds since 1970-01-01T00:00:00Z; the milliseconds are
    /// dropped) as AWS's `$context.requestTime`, in UTC.
    pub fn from_epoch_ms(epoch_ms: u64) -> RequestTime {
        let secs = (epoch_ms / 1000).min(MAX_SECS);
        let (year, month, day) = civil_from_days(secs / 86_400);
        let tod = secs % 86_400;
        let mut b = *b"01/Jan/1970:00:00:00 +0000";
        two(&mut b[0..2], day);
        b[3..6].copy_from_slice(MONTHS[(month - 1) as usize]);
        two(&mut b[7..9], year / 100);
        two(&mut b[9..11], year % 100);
        two(&mut b[12..14], tod / 3600);
        two(&mut b[15..17], tod / 60 % 60);
        two(&mut b[18..20], tod % 60);
        RequestTime(b)
    }

    /// The 26 bytes.
    pub fn as_bytes(&self) -> &[u8; 26] {
        &self.0
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, letters, '/', ':', ' ' and '+' are ever written.
        std::str::from_utf8(&self.0).unwrap_or("-")
    }
}

fn two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01, proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`, for non-negative days).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The day count since 1970-01-01 of (year, month 1..=12, day 1..=31): the inverse of
/// [`civil_from_days`] (Howard Hinnant's `days_from_civil`), for dates from 1970 on.
pub(crate) fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}
