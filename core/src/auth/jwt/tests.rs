//! Tokens minted here with ring (every algorithm, each rule) and by PyJWT (`testdata/`, see
//! `testdata/mint.py`), verified with `verify`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use super::*;

const ISS: &str = "https://issuer.example.com";
const NOW: u64 = 1_700_000_000;
/// A 2048-bit RSA key in PKCS#8 DER (`openssl genpkey -algorithm RSA -pkeyopt
/// rsa_keygen_bits:2048 | openssl pkcs8 -topk8 -nocrypt -outform DER`).
const RSA_PKCS8: &[u8] = include_bytes!("testdata/rsa2048.pk8");

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The test's signing keys, one per key type, and their JWKS (kids "rsa", "p256", "p384",
/// "ed").
struct Keys {
    rsa: RsaKeyPair,
    p256: EcdsaKeyPair,
    p384: EcdsaKeyPair,
    ed: Ed25519KeyPair,
    rng: SystemRandom,
}

impl Keys {
    fn new() -> Keys {
        let rng = SystemRandom::new();
        let ec = |alg| {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("ec key");
            EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("ec key")
        };
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).expect("ed key");
        Keys {
            rsa: RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("rsa key"),
            p256: ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            p384: ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            ed: Ed25519KeyPair::from_pkcs8(ed.as_ref()).expect("ed key"),
            rng,
        }
    }

    fn rsa_n(&self) -> Vec<u8> {
        signature::RsaPublicKeyComponents::<Vec<u8>>::from(self.rsa.public()).n
    }

    fn jwks(&self) -> Value {
        let rsa = signature::RsaPublicKeyComponents::<Vec<u8>>::from(self.rsa.public());
        let ec = |kp: &EcdsaKeyPair, kid: &str, crv: &str| {
            let point = kp.public_key().as_ref();
            let len = (point.len() - 1) / 2;
            json!({"kty": "EC", "kid": kid, "crv": crv, "use": "sig",
                   "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
        };
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "n": b64(&rsa.n), "e": b64(&rsa.e)},
            ec(&self.p256, "p256", "P-256"),
            ec(&self.p384, "p384", "P-384"),
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(self.ed.public_key().as_ref())},
        ]})
    }

    fn set(&self) -> JwkSet {
        JwkSet::parse(self.jwks().to_string().as_bytes()).expect("jwks")
    }

    /// Signs `header.claims` with the key that `alg` needs (whatever the header says).
    fn sign(&self, alg: &str, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let msg = signed.as_bytes();
        let rsa = |enc: &'static dyn signature::RsaEncoding| {
            let mut sig = vec![0; self.rsa.public().modulus_len()];
            self.rsa
                .sign(enc, &self.rng, msg, &mut sig)
                .expect("rsa sign");
            sig
        };
        let sig = match alg {
            "RS256" => rsa(&signature::RSA_PKCS1_SHA256),
            "RS384" => rsa(&signature::RSA_PKCS1_SHA384),
            "RS512" => rsa(&signature::RSA_PKCS1_SHA512),
            "PS256" => rsa(&signature::RSA_PSS_SHA256),
            "PS384" => rsa(&signature::RSA_PSS_SHA384),
            "PS512" => rsa(&signature::RSA_PSS_SHA512),
            "ES256" => self
                .p256
                .sign(&self.rng, msg)
                .expect("sign")
                .as_ref()
                .to_vec(),
            "ES384" => self
                .p384
                .sign(&self.rng, msg)
                .expect("sign")
                .as_ref()
                .to_vec(),
            "EdDSA" => self.ed.sign(msg).as_ref().to_vec(),
            other => panic!("no key for {other}"),
        };
        format!("{signed}.{}", b64(&sig))
    }

    /// A token signed with `alg` by the key of that type, with that key's kid.
    fn mint(&self, alg: &str, claims: &Value) -> String {
        self.sign(
            alg,
            &json!({"alg": alg, "typ": "JWT", "kid": kid_for(alg)}),
            claims,
        )
    }
}

fn kid_for(alg: &str) -> &'static str {
    match alg {
        "ES256" => "p256",
        "ES384" => "p384",
        "EdDSA" => "ed",
        _ => "rsa",
    }
}

fn rules() -> JwtRules {
    JwtRules {
        issuer: ISS.into(),
        audience: vec!["api".into(), "other-api".into()],
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": "api", "sub": "user-1", "exp": NOW + 600, "iat": NOW - 10})
}

/// `claims()` with some members replaced (`null` removes one).
fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().expect("object") {
        if v.is_null() {
            c.as_object_mut().expect("object").remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn check(keys: &Keys, token: &str) -> Result<VerifiedJwt, JwtError> {
    verify(token.as_bytes(), &keys.set(), &rules(), NOW)
}

#[test]
fn every_supported_algorithm_verifies() {
    let keys = Keys::new();
    assert_eq!(keys.set().len(), 4);
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ] {
        let jwt = check(&keys, &keys.mint(alg, &claims())).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(jwt.exp, Some(NOW + 600), "{alg}");
        assert_eq!(jwt.claim("sub"), Some("user-1"), "{alg}");
    }
}

fn pyjwt_vector(name: &str, token: &str, jwks: &str) {
    let set = JwkSet::parse(jwks.as_bytes()).expect("jwks");
    let rules = JwtRules {
        issuer: ISS.into(),
        audience: vec!["turnpike-tests".into()],
    };
    let jwt = verify(token.trim().as_bytes(), &set, &rules, NOW)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(jwt.exp, Some(4_102_444_800));
    assert_eq!(jwt.claim("sub"), Some("pyjwt-user"));
    assert_eq!(jwt.claim("groups"), Some("[admin dev]"));
    assert_eq!(jwt.claim("iat"), Some("1700000000"));
    assert_eq!(&*jwt.scopes, &["read".into(), "write".into()]);
    // Past 2100-01-01 it has expired.
    assert_eq!(
        verify(token.trim().as_bytes(), &set, &rules, 4_102_444_800),
        Err(JwtError::Expired)
    );
}

#[test]
fn pyjwt_tokens_verify() {
    pyjwt_vector(
        "RS256",
        include_str!("testdata/rs256.jwt"),
        include_str!("testdata/rs256.jwks.json"),
    );
    pyjwt_vector(
        "ES256",
        include_str!("testdata/es256.jwt"),
        include_str!("testdata/es256.jwks.json"),
    );
    pyjwt_vector(
        "EdDSA",
        include_str!("testdata/eddsa.jwt"),
        include_str!("testdata/eddsa.jwks.json"),
    );
}

#[test]
fn alg_none_and_hmac_are_refused() {
    let keys = Keys::new();
    let body = b64(claims().to_string().as_bytes());
    for alg in ["none", "None", "NONE"] {
        let header = b64(json!({"alg": alg, "kid": "rsa"}).to_string().as_bytes());
        for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
            let got = check(&keys, &token);
            assert!(got.is_err(), "{alg}: {token}");
        }
        assert_eq!(
            check(&keys, &format!("{header}.{body}.")),
            Err(JwtError::UnsupportedAlgorithm)
        );
    }
    // The classic confusion: HS256 keyed with the RSA public key (its modulus, or the JWK's
    // JSON text) as the HMAC secret.
    let header = b64(json!({"alg": "HS256", "kid": "rsa"}).to_string().as_bytes());
    let signed = format!("{header}.{body}");
    let jwk_text = keys.jwks()["keys"][0].to_string();
    for secret in [keys.rsa_n(), jwk_text.into_bytes()] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let tag = ring::hmac::sign(&key, signed.as_bytes());
        let token = format!("{signed}.{}", b64(tag.as_ref()));
        assert_eq!(check(&keys, &token), Err(JwtError::UnsupportedAlgorithm));
    }
    for alg in ["HS384", "HS512", "ES512", "RS1", ""] {
        let token = keys.sign("RS256", &json!({"alg": alg, "kid": "rsa"}), &claims());
        assert_eq!(
            check(&keys, &token),
            Err(JwtError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn alg_must_fit_the_key() {
    let keys = Keys::new();
    // RS256 header naming the EC key, signed with the RSA key.
    let token = keys.sign("RS256", &json!({"alg": "RS256", "kid": "p256"}), &claims());
    assert_eq!(check(&keys, &token), Err(JwtError::AlgorithmKeyMismatch));
    // ES384 on the P-256 key; EdDSA on the RSA key; ES256 on the Ed25519 key.
    for (alg, kid) in [("ES384", "p256"), ("EdDSA", "rsa"), ("ES256", "ed")] {
        let token = keys.sign(alg, &json!({"alg": alg, "kid": kid}), &claims());
        assert_eq!(
            check(&keys, &token),
            Err(JwtError::AlgorithmKeyMismatch),
            "{alg}"
        );
    }
    // A key whose own `alg` is RS256 does not verify PS256.
    let mut jwks = keys.jwks();
    jwks["keys"][0]["alg"] = json!("RS256");
    let set = JwkSet::parse(jwks.to_string().as_bytes()).expect("jwks");
    let ps = keys.mint("PS256", &claims());
    assert_eq!(
        verify(ps.as_bytes(), &set, &rules(), NOW),
        Err(JwtError::AlgorithmKeyMismatch)
    );
    let rs = keys.mint("RS256", &claims());
    assert!(verify(rs.as_bytes(), &set, &rules(), NOW).is_ok());
}

#[test]
fn kid_selects_the_key() {
    let keys = Keys::new();
    let token = keys.sign(
        "RS256",
        &json!({"alg": "RS256", "kid": "rotated"}),
        &claims(),
    );
    let err = check(&keys, &token).expect_err("unknown kid");
    assert_eq!(err, JwtError::UnknownKid);
    assert!(err.is_unknown_kid());
    assert!(!JwtError::BadSignature.is_unknown_kid());
    assert!(keys.set().has_kid("rsa") && !keys.set().has_kid("rotated"));

    // Without a kid, every key that fits alg is tried.
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = keys.sign(alg, &json!({"alg": alg}), &claims());
        assert!(check(&keys, &token).is_ok(), "{alg}");
    }
    // ... and with no key fitting alg, no key is known for it.
    let set = JwkSet::parse(
        json!({"keys": [keys.jwks()["keys"][0]]})
            .to_string()
            .as_bytes(),
    )
    .expect("jwks");
    let token = keys.sign("ES256", &json!({"alg": "ES256"}), &claims());
    assert_eq!(
        verify(token.as_bytes(), &set, &rules(), NOW),
        Err(JwtError::UnknownKid)
    );
    // A kid of the right type whose key did not sign: bad signature.
    let other = Keys::new();
    let token = other.mint("ES256", &claims());
    assert_eq!(check(&keys, &token), Err(JwtError::BadSignature));
}

#[test]
fn tampering_breaks_the_signature() {
    let keys = Keys::new();
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let token = keys.mint(alg, &claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64(claims_with(json!({"sub": "admin"})).to_string().as_bytes());
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(
            check(&keys, &tampered),
            Err(JwtError::BadSignature),
            "{alg}"
        );
        // The payload is not read before the signature verifies.
        let garbage = format!("{}.{}.{}", parts[0], b64(b"not json"), parts[2]);
        assert_eq!(check(&keys, &garbage), Err(JwtError::BadSignature), "{alg}");
        let truncated = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..8]);
        assert_eq!(
            check(&keys, &truncated),
            Err(JwtError::BadSignature),
            "{alg}"
        );
    }
}

#[test]
fn issuer_must_match_exactly() {
    let keys = Keys::new();
    for iss in [
        json!("https://evil.example.com"),
        json!(format!("{ISS}/")),
        Value::Null,
    ] {
        let token = keys.mint("ES256", &claims_with(json!({ "iss": iss })));
        assert_eq!(check(&keys, &token), Err(JwtError::WrongIssuer), "{iss}");
    }
    let token = keys.mint("ES256", &claims_with(json!({"iss": 7})));
    assert!(matches!(check(&keys, &token), Err(JwtError::ClaimType(_))));
}

#[test]
fn audience_from_aud_or_client_id() {
    let keys = Keys::new();
    let cases = [
        (json!({"aud": "other-api"}), Ok(())),
        (json!({"aud": ["x", "api"]}), Ok(())),
        (json!({"aud": ["x", "y"]}), Err(JwtError::WrongAudience)),
        (json!({"aud": []}), Err(JwtError::WrongAudience)),
        (json!({"aud": "x"}), Err(JwtError::WrongAudience)),
        (json!({"aud": null, "client_id": "api"}), Ok(())),
        (
            json!({"aud": null, "client_id": "x"}),
            Err(JwtError::WrongAudience),
        ),
        (json!({"aud": null}), Err(JwtError::WrongAudience)),
        // AWS reads client_id only without aud.
        (
            json!({"aud": "x", "client_id": "api"}),
            Err(JwtError::WrongAudience),
        ),
    ];
    for (changes, want) in cases {
        let token = keys.mint("EdDSA", &claims_with(changes.clone()));
        assert_eq!(check(&keys, &token).map(|_| ()), want, "{changes}");
    }
    for bad in [
        json!({"aud": 3}),
        json!({"aud": ["api", 3]}),
        json!({"aud": null, "client_id": true}),
    ] {
        let token = keys.mint("EdDSA", &claims_with(bad.clone()));
        assert!(
            matches!(check(&keys, &token), Err(JwtError::ClaimType(_))),
            "{bad}"
        );
    }
}

#[test]
fn times_have_no_leeway() {
    let keys = Keys::new();
    let cases = [
        (json!({"exp": NOW - 1}), Err(JwtError::Expired)),
        (json!({"exp": NOW}), Err(JwtError::Expired)),
        (json!({"exp": NOW as f64 + 0.5}), Ok(())),
        (
            json!({"exp": null}),
            Err(JwtError::ClaimType("exp is missing")),
        ),
        (
            json!({"exp": "9999999999"}),
            Err(JwtError::ClaimType("exp is not a number")),
        ),
        (json!({"nbf": NOW + 1}), Err(JwtError::NotYetValid)),
        (json!({"nbf": NOW}), Ok(())),
        (
            json!({"nbf": "0"}),
            Err(JwtError::ClaimType("nbf is not a number")),
        ),
        (json!({"iat": NOW + 1}), Err(JwtError::IssuedInFuture)),
        (json!({"iat": NOW}), Ok(())),
        (json!({"iat": null}), Ok(())),
        (
            json!({"iat": [1]}),
            Err(JwtError::ClaimType("iat is not a number")),
        ),
    ];
    for (changes, want) in cases {
        let token = keys.mint("ES256", &claims_with(changes.clone()));
        assert_eq!(check(&keys, &token).map(|_| ()), want, "{changes}");
    }
}

#[test]
fn scopes_from_scope_or_scp() {
    let keys = Keys::new();
    let scopes = |changes: Value| {
        let token = keys.mint("EdDSA", &claims_with(changes));
        check(&keys, &token).map(|jwt| jwt.scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(
        scopes(json!({"scope": "read  write"})),
        Ok(vec!["read".into(), "write".into()])
    );
    assert_eq!(
        scopes(json!({"scp": ["a:read", "b"]})),
        Ok(vec!["a:read".into(), "b".into()])
    );
    assert_eq!(
        scopes(json!({"scp": "x y"})),
        Ok(vec!["x".into(), "y".into()])
    );
    assert_eq!(scopes(json!({})), Ok(vec![]));
    assert!(scopes(json!({"scope": ["read"]})).is_err());
    assert!(scopes(json!({"scp": ["read", 1]})).is_err());

    let token = keys.mint("EdDSA", &claims_with(json!({"scope": "read write"})));
    let jwt = check(&keys, &token).expect("verifies");
    assert!(jwt.has_scopes(&[]));
    assert!(jwt.has_scopes(&["admin".into(), "write".into()]));
    assert!(!jwt.has_scopes(&["admin".into()]));
}

#[test]
fn claims_render_as_aws_does() {
    let keys = Keys::new();
    let token = keys.mint(
        "ES384",
        &claims_with(json!({
            "groups": ["a", "b"], "mixed": ["a", 1, true, {"k": "v"}], "empty": [],
            "n": 42, "f": 1.5, "flag": false, "obj": {"k": ["v"]}, "name": "Zoë \"Z\"",
        })),
    );
    let jwt = check(&keys, &token).expect("verifies");
    assert_eq!(jwt.claim("groups"), Some("[a b]"));
    assert_eq!(jwt.claim("mixed"), Some(r#"[a 1 true {"k":"v"}]"#));
    assert_eq!(jwt.claim("empty"), Some("[]"));
    assert_eq!(jwt.claim("n"), Some("42"));
    assert_eq!(jwt.claim("f"), Some("1.5"));
    assert_eq!(jwt.claim("flag"), Some("false"));
    assert_eq!(jwt.claim("obj"), Some(r#"{"k":["v"]}"#));
    assert_eq!(jwt.claim("name"), Some("Zoë \"Z\""));
    assert_eq!(jwt.claim("exp"), Some((NOW + 600).to_string().as_str()));
    assert_eq!(jwt.claim("missing"), None);
    assert!(
        jwt.claims.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted by name"
    );
}

#[test]
fn malformed_tokens() {
    let keys = Keys::new();
    let good = keys.mint("ES256", &claims());
    let parts: Vec<&str> = good.split('.').collect();
    let malformed = |token: &str| matches!(check(&keys, token), Err(JwtError::Malformed(_)));
    assert!(malformed(""));
    assert!(malformed(&format!("{}.{}", parts[0], parts[1])));
    assert!(malformed(&format!("{good}.{}", parts[2])));
    assert!(malformed(&format!(
        "{}=.{}.{}",
        parts[0], parts[1], parts[2]
    )));
    assert!(malformed(&format!(
        "{}.{}+.{}",
        parts[0], parts[1], parts[2]
    )));
    assert!(malformed(&format!(" {good}")));
    let header = |h: &str| format!("{}.{}.{}", b64(h.as_bytes()), parts[1], parts[2]);
    for h in [
        r#"["ES256"]"#,
        r#""ES256""#,
        r#"{"kid":"p256"}"#,
        r#"{"alg":"ES256","kid":"p256""#,
        r#"{"alg":"ES256","alg":"none","kid":"p256"}"#,
        r#"{"alg":3,"kid":"p256"}"#,
    ] {
        assert!(malformed(&header(h)), "{h}");
    }
    // crit: no extension is understood, even with a valid signature.
    let token = keys.sign(
        "ES256",
        &json!({"alg": "ES256", "kid": "p256", "crit": ["exp"], "exp": 1}),
        &claims(),
    );
    assert_eq!(
        check(&keys, &token),
        Err(JwtError::Malformed(
            "crit header: no extension is understood"
        ))
    );
    // A signed payload that is not an object.
    let token = keys.sign(
        "ES256",
        &json!({"alg": "ES256", "kid": "p256"}),
        &json!(["iss", ISS]),
    );
    assert!(malformed(&token));
    // Over 16 KiB, even if signed.
    let token = keys.mint(
        "ES256",
        &claims_with(json!({"pad": "x".repeat(MAX_TOKEN_BYTES)})),
    );
    assert_eq!(
        check(&keys, &token),
        Err(JwtError::Malformed("over 16 KiB"))
    );
    // An escaped alg is still the same name.
    let token = keys.sign(
        "ES256",
        &json!({"alg": "ES\u{32}56", "kid": "p256"}),
        &claims(),
    );
    assert!(check(&keys, &token).is_ok());
}

#[test]
fn bearer_prefix() {
    assert_eq!(
        token_from_header(b"Bearer abc.def.ghi"),
        Some(&b"abc.def.ghi"[..])
    );
    assert_eq!(token_from_header(b"bearer   abc "), Some(&b"abc"[..]));
    assert_eq!(token_from_header(b"BEARER abc"), Some(&b"abc"[..]));
    assert_eq!(
        token_from_header(b"  abc.def.ghi  "),
        Some(&b"abc.def.ghi"[..])
    );
    assert_eq!(token_from_header(b"Bearerabc"), Some(&b"Bearerabc"[..]));
    assert_eq!(token_from_header(b"Bearer "), None);
    assert_eq!(token_from_header(b"Bearer    "), None);
    assert_eq!(token_from_header(b""), None);
    assert_eq!(token_from_header(b"   "), None);
}

#[test]
fn jwks_skips_keys_it_cannot_use() {
    let keys = Keys::new();
    let good = keys.jwks()["keys"].as_array().expect("keys").clone();
    let short_n = b64(&[0xc5; 128]); // 1024 bits
    let mut doc = json!({"keys": [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "EC", "kid": "p521", "crv": "P-521", "x": b64(&[1; 66]), "y": b64(&[1; 66])},
        {"kty": "EC", "kid": "short", "crv": "P-256", "x": b64(&[1; 31]), "y": b64(&[1; 32])},
        {"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": b64(&[1; 32])},
        {"kty": "RSA", "kid": "rsa1024", "n": short_n, "e": "AQAB"},
        {"kty": "RSA", "kid": "even-e", "n": b64(&keys.rsa_n()), "e": "AQAC"},
        {"kty": "RSA", "kid": "no-e", "n": b64(&keys.rsa_n())},
        {"kty": "RSA", "kid": "bad-b64", "n": "!!", "e": "AQAB"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(&keys.rsa_n()), "e": "AQAB"},
        {"kty": "RSA", "kid": "ops", "key_ops": ["encrypt"], "n": b64(&keys.rsa_n()), "e": "AQAB"},
        {"kty": "RSA", "kid": "hs-alg", "alg": "HS256", "n": b64(&keys.rsa_n()), "e": "AQAB"},
        {"kty": "RSA", "kid": "es-alg", "alg": "ES256", "n": b64(&keys.rsa_n()), "e": "AQAB"},
        {"kty": "RSA", "kid": 5, "n": b64(&keys.rsa_n()), "e": "AQAB"},
        "not a key",
    ]});
    doc["keys"].as_array_mut().expect("keys").extend(good);
    let set = JwkSet::parse(doc.to_string().as_bytes()).expect("jwks");
    assert_eq!(set.len(), 4);
    for kid in ["rsa", "p256", "p384", "ed"] {
        assert!(set.has_kid(kid), "{kid}");
    }
    let token = keys.mint("ES256", &claims());
    assert!(verify(token.as_bytes(), &set, &rules(), NOW).is_ok());

    let empty = JwkSet::parse(br#"{"keys": []}"#).expect("jwks");
    assert!(empty.is_empty());
    assert_eq!(
        verify(token.as_bytes(), &empty, &rules(), NOW),
        Err(JwtError::UnknownKid)
    );
    for doc in [
        &br#"[]"#[..],
        br#"{"keys": {}}"#,
        br#"{"key": []}"#,
        b"null",
    ] {
        assert_eq!(JwkSet::parse(doc), Err(JwksError::NoKeys));
    }
    assert!(matches!(JwkSet::parse(b"{"), Err(JwksError::Json(_))));
}
