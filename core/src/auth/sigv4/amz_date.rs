//! The request time SigV4 signs: `X-Amz-Date` in ISO 8601 basic format (`20150830T123600Z`),
//! or failing that the HTTP `Date` header (IMF-fixdate, RFC 9110 §5.6.7).

use crate::context::time::{civil_from_days, days_from_civil};

/// A signing time: seconds since the epoch and its ISO 8601 basic form, which is what the
/// string to sign carries (also when the client sent a `Date` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AmzDate {
    pub epoch_s: u64,
    pub iso: [u8; 16],
}

impl AmzDate {
    /// `YYYYMMDD`, the credential scope's date.
    pub fn day(&self) -> &[u8] {
        &self.iso[..8]
    }

    pub fn from_epoch(epoch_s: u64) -> AmzDate {
        let (y, mo, d) = civil_from_days(epoch_s / 86_400);
        let secs = epoch_s % 86_400;
        let mut iso = *b"00000000T000000Z";
        put_digits(&mut iso[0..4], y);
        put_digits(&mut iso[4..6], mo);
        put_digits(&mut iso[6..8], d);
        put_digits(&mut iso[9..11], secs / 3600);
        put_digits(&mut iso[11..13], secs / 60 % 60);
        put_digits(&mut iso[13..15], secs % 60);
        AmzDate { epoch_s, iso }
    }

    /// `YYYYMMDDTHHMMSSZ`; `None` for anything else, including out-of-range fields and years
    /// before 1970.
    pub fn parse_iso_basic(v: &[u8]) -> Option<AmzDate> {
        if v.len() != 16 || v[8] != b'T' || v[15] != b'Z' {
            return None;
        }
        let n = |r: std::ops::Range<usize>| digits(&v[r]);
        from_fields(
            n(0..4)?,
            n(4..6)?,
            n(6..8)?,
            n(9..11)?,
            n(11..13)?,
            n(13..15)?,
        )
    }

    /// IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
    pub fn parse_http_date(v: &[u8]) -> Option<AmzDate> {
        if v.len() != 29 || &v[3..5] != b", " || &v[25..] != b" GMT" {
            return None;
        }
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let month = MONTHS.iter().position(|m| m[..] == v[8..11])? as u64 + 1;
        let ok_seps = v[7] == b' ' && v[11] == b' ' && v[16] == b' ' && v[19] == b':';
        if !ok_seps || v[22] != b':' {
            return None;
        }
        from_fields(
            digits(&v[12..16])?,
            month,
            digits(&v[5..7])?,
            digits(&v[17..19])?,
            digits(&v[20..22])?,
            digits(&v[23..25])?,
        )
    }
}

fn from_fields(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64) -> Option<AmzDate> {
    if y < 1970 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    // Reject dates that do not exist (Feb 30): the round trip must give the same day.
    if civil_from_days(days) != (y, mo, d) {
        return None;
    }
    Some(AmzDate::from_epoch(days * 86_400 + h * 3600 + mi * 60 + s))
}

fn digits(v: &[u8]) -> Option<u64> {
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

fn put_digits(out: &mut [u8], mut n: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}
