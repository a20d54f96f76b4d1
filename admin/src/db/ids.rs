//! Resource ids, shaped like AWS's: random, lower-case letters and digits, so they are safe in
//! URLs, file names and YAML without quoting, and say nothing about when or in what order
//! they were made.

/// The alphabet of every id: 36 symbols.
const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `cert-` and 12 random symbols (62 bits): a certificate imported through `/v1/certificates`.
pub fn certificate_id() -> Result<String, getrandom::Error> {
    Ok(format!("cert-{}", random_symbols(12)?))
}

/// 10 random symbols (51 bits), like an API Gateway REST `clientCertificateId`.
pub fn client_certificate_id() -> Result<String, getrandom::Error> {
    random_symbols(10)
}

/// 10 random symbols (51 bits), like an API Gateway `apiKey` id (`abc123defg`).
pub fn api_key_id() -> Result<String, getrandom::Error> {
    random_symbols(10)
}

/// 6 random symbols (31 bits), like an API Gateway `usagePlanId` (`a1b2c3`): plans are few,
/// and a clash is retried.
pub fn usage_plan_id() -> Result<String, getrandom::Error> {
    random_symbols(6)
}

/// A new API key value: 40 letters (both cases) and digits, about 238 bits, as API Gateway
/// generates them.
pub fn api_key_value() -> Result<String, getrandom::Error> {
    const VALUE: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(40);
    let mut buf = [0u8; 64];
    while out.len() < 40 {
        getrandom::fill(&mut buf)?;
        // 248 = 4 x 62: bytes above are thrown away so every symbol is equally likely.
        for &b in &buf {
            if b < 248 && out.len() < 40 {
                out.push(VALUE[usize::from(b % 62)] as char);
            }
        }
    }
    Ok(out)
}

/// Whether `id` has the shape [`api_key_id`] makes.
pub fn is_api_key_id(id: &str) -> bool {
    id.len() == 10 && id.bytes().all(|b| ALPHABET.contains(&b))
}

/// Whether `id` has the shape [`usage_plan_id`] makes.
pub fn is_usage_plan_id(id: &str) -> bool {
    id.len() == 6 && id.bytes().all(|b| ALPHABET.contains(&b))
}

/// Whether `id` has the shape [`certificate_id`] makes.
pub fn is_certificate_id(id: &str) -> bool {
    id.strip_prefix("cert-")
        .is_some_and(|rest| rest.len() == 12 && rest.bytes().all(|b| ALPHABET.contains(&b)))
}

/// Whether `id` has the shape [`client_certificate_id`] makes.
pub fn is_client_certificate_id(id: &str) -> bool {
    id.len() == 10 && id.bytes().all(|b| ALPHABET.contains(&b))
}

/// `n` symbols drawn uniformly from [`ALPHABET`]: bytes of 252 and above are thrown away
/// (252 = 7 x 36), so no symbol is more likely than another.
fn random_symbols(n: usize) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 32];
    while out.len() < n {
        getrandom::fill(&mut buf)?;
        for &b in &buf {
            if b < 252 && out.len() < n {
                out.push(ALPHABET[usize::from(b % 36)] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shapes_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = certificate_id().expect("random");
            assert!(is_certificate_id(&c), "{c}");
            assert_eq!(c.len(), 17);
            assert!(seen.insert(c));
            let k = client_certificate_id().expect("random");
            assert!(is_client_certificate_id(&k), "{k}");
            assert!(seen.insert(k));
        }
        for not in [
            "cert-ABCDEFGHIJKL",
            "cert-abc",
            "cert-abcdefghijk_",
            "abcdefghijkl",
        ] {
            assert!(!is_certificate_id(not), "{not}");
        }
        for not in ["abcdefghi", "abcdefghijk", "ABCDEFGHIJ", "abcde-ghij"] {
            assert!(!is_client_certificate_id(not), "{not}");
        }
    }

    #[test]
    fn key_values_and_ids() {
        let v = api_key_value().expect("random");
        assert_eq!(v.len(), 40);
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric()), "{v}");
        assert_ne!(v, api_key_value().expect("random"));
        assert!(is_api_key_id(&api_key_id().expect("random")));
        assert!(is_usage_plan_id(&usage_plan_id().expect("random")));
        assert!(!is_usage_plan_id("ABCDEF"));
    }

    #[test]
    fn every_symbol_is_drawn() {
        let all: String = (0..100)
            .map(|_| random_symbols(20).expect("random"))
            .collect();
        for &c in ALPHABET {
            assert!(all.contains(c as char), "{} never drawn", c as char);
        }
    }
}
