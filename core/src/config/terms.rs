//! Config problems in the user's terms: a numeric field's unit and allowed range, by its field
//! path, so that `timeout_ms: -1` says "must be a whole number of milliseconds, 50 to
//! 3600000" (not the parser's "invalid u64"), and the check's range errors say the same; and
//! unknown names answered with the names that exist and the closest one.

use crate::h1::request::MAX_HEADERS_CAP;

const HOUR_MS: u64 = 3_600_000;

/// Numeric fields: path pattern (`[]` for any index, `*` for any map key), unit, least and
/// greatest value.
const FIELDS: &[(&str, &str, u64, u64)] = &[
    ("gateway.header_timeout_ms", "milliseconds", 100, HOUR_MS),
    ("gateway.idle_timeout_ms", "milliseconds", 100, 24 * HOUR_MS),
    ("gateway.drain_timeout_ms", "milliseconds", 0, HOUR_MS),
    ("gateway.max_header_bytes", "bytes", 1024, 1 << 20),
    ("gateway.max_headers", "headers", 8, 1000),
    (
        "gateway.upstream.connect_timeout_ms",
        "milliseconds",
        1,
        HOUR_MS,
    ),
    (
        "gateway.upstream.max_idle_per_core",
        "connections",
        0,
        100_000,
    ),
    (
        "gateway.upstream.idle_timeout_ms",
        "milliseconds",
        100,
        24 * HOUR_MS,
    ),
    (
        "gateway.upstream.max_response_header_bytes",
        "bytes",
        1024,
        1 << 20,
    ),
    (
        "gateway.upstream.max_response_headers",
        "headers",
        8,
        MAX_HEADERS_CAP as u64,
    ),
    ("admin.history", "versions", 1, 1000),
    ("cluster.sync_interval_ms", "milliseconds", 1, 10_000),
    (
        "apis[].integrations.*.timeout_ms",
        "milliseconds",
        50,
        HOUR_MS,
    ),
    ("apis[].authorizers.*.timeout_ms", "milliseconds", 1, 30_000),
    ("apis[].authorizers.*.result_ttl", "seconds", 0, 3600),
    (
        "apis[].stages[].cache.capacity_bytes",
        "bytes",
        crate::cache::settings::MIN_CAPACITY_BYTES,
        crate::cache::settings::MAX_CAPACITY_BYTES,
    ),
    ("apis[].stages[].cache.ttl_seconds", "seconds", 0, 3600),
    (
        "apis[].stages[].cache.max_entry_bytes",
        "bytes",
        1,
        crate::cache::settings::MAX_ENTRY_BYTES,
    ),
    ("apis[].routes[].cache.ttl_seconds", "seconds", 0, 3600),
    (
        "apis[].websocket.idle_timeout_ms",
        "milliseconds",
        1000,
        24 * HOUR_MS,
    ),
    (
        "apis[].websocket.max_duration_ms",
        "milliseconds",
        1000,
        7 * 24 * HOUR_MS,
    ),
    ("apis[].websocket.max_message_bytes", "bytes", 125, 16 << 20),
    ("apis[].websocket.max_frame_bytes", "bytes", 125, 16 << 20),
    ("functions[].timeout_ms", "milliseconds", 1, 900_000),
    ("functions[].memory_mb", "MiB", 64, 10_240),
    ("functions[].concurrency", "processes", 1, 256),
    ("functions[].queue", "invocations", 1, 100_000),
];

/// `apis[0].integrations.users.timeout_ms` -> `apis[].integrations.*.timeout_ms`.
fn generalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut keyed = false;
    for (i, seg) in path.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        let name = seg.split('[').next().unwrap_or(seg);
        if keyed {
            out.push('*');
        } else {
            out.push_str(name);
            if seg.contains('[') {
                out.push_str("[]");
            }
        }
        keyed = matches!(name, "integrations" | "authorizers") && !seg.contains('[');
    }
    out
}

/// The unit and range of the numeric field at `path`, if it is one.
pub(super) fn bounds(path: &str) -> Option<(&'static str, u64, u64)> {
    let general = generalize(path);
    FIELDS
        .iter()
        .find(|(p, ..)| *p == general)
        .map(|&(_, unit, lo, hi)| (unit, lo, hi))
}

/// What the numeric field at `path` must be: "a whole number of milliseconds, 50 to 3600000".
/// `lo`/`hi` are used when the field is not in the table.
pub(super) fn whole_number(path: &str, lo: u64, hi: u64) -> String {
    match bounds(path) {
        Some((unit, lo, hi)) => format!("must be a whole number of {unit}, {lo} to {hi}"),
        None => format!("must be a whole number, {lo} to {hi}"),
    }
}

/// The parser's reason for `path` in the user's terms, where it is a number of the wrong
/// shape (negative, fractional, text, too large for its type); else `reason` as it is.
pub(super) fn parse_reason(path: &str, reason: &str) -> String {
    let numeric = ["u64", "u32", "u16", "u8", "usize"].iter().any(|t| {
        reason.contains(&format!("expected {t}")) || reason.contains(&format!("invalid {t}"))
    });
    if !numeric {
        return reason.to_owned();
    }
    match bounds(path) {
        Some((unit, lo, hi)) => format!("must be a whole number of {unit}, {lo} to {hi}"),
        None => "must be a whole number, 0 or more".to_owned(),
    }
}

/// `no integration named "user" in this API`, with what exists and the closest name:
/// `(did you mean "users"? defined: orders, users)`.
pub(super) fn unknown_name<'a>(
    what: &str,
    name: &str,
    place: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut known: Vec<&str> = known.into_iter().collect();
    known.sort_unstable();
    known.dedup();
    let mut out = format!("no {what} named {name:?} {place}");
    if known.is_empty() {
        out.push_str(" (none is defined)");
        return out;
    }
    let closest = known
        .iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&name.to_lowercase(), &k.to_lowercase()),
                *k,
            )
        })
        .min()
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(2));
    out.push_str(" (");
    if let Some((_, k)) = closest {
        out.push_str(&format!("did you mean {k:?}? "));
    }
    const SHOWN: usize = 10;
    out.push_str("defined: ");
    out.push_str(&known[..known.len().min(SHOWN)].join(", "));
    if known.len() > SHOWN {
        out.push_str(&format!(", and {} more", known.len() - SHOWN));
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_generalize_over_indexes_and_keys() {
        assert_eq!(
            generalize("apis[0].integrations.users.timeout_ms"),
            "apis[].integrations.*.timeout_ms"
        );
        assert_eq!(
            generalize("functions[3].memory_mb"),
            "functions[].memory_mb"
        );
        assert_eq!(
            generalize("gateway.idle_timeout_ms"),
            "gateway.idle_timeout_ms"
        );
    }

    #[test]
    fn numbers_of_the_wrong_shape_say_what_is_expected() {
        assert_eq!(
            parse_reason(
                "apis[0].integrations.users.timeout_ms",
                "invalid u64 at line 4, column 73"
            ),
            "must be a whole number of milliseconds, 50 to 3600000"
        );
        assert_eq!(
            parse_reason(
                "functions[0].memory_mb",
                "invalid value: integer `-1`, expected u64 at line 1 column 5"
            ),
            "must be a whole number of MiB, 64 to 10240"
        );
        assert_eq!(
            parse_reason(
                "apis[0].max_body_bytes",
                "invalid type: string \"x\", expected u64"
            ),
            "must be a whole number, 0 or more"
        );
        assert_eq!(
            parse_reason("apis[0].name", "invalid type: integer, expected a string"),
            "invalid type: integer, expected a string"
        );
    }

    #[test]
    fn unknown_names_list_what_exists_and_the_closest() {
        assert_eq!(
            unknown_name("integration", "user", "in this API", ["users", "orders"]),
            "no integration named \"user\" in this API (did you mean \"users\"? defined: orders, users)"
        );
        assert_eq!(
            unknown_name("integration", "zzz", "in this API", ["users", "orders"]),
            "no integration named \"zzz\" in this API (defined: orders, users)"
        );
        assert_eq!(
            unknown_name("function", "f", "in functions", []),
            "no function named \"f\" in functions (none is defined)"
        );
    }
}
