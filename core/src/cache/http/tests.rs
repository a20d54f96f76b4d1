use super::*;

fn fields(h: &[(&'static str, &'static str)]) -> ResponseFields<'static> {
    ResponseFields::read(h.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
}

const T0: u64 = 1_700_000_000; // seconds

#[test]
fn directives_parse_tokens_quotes_case_and_first_wins() {
    let d = Directives::parse([
        &b"Max-Age=60, no-cache=\"set-cookie, x\" , private"[..],
        b"max-age=5",
    ]);
    assert_eq!(d.max_age, Some(60));
    assert!(d.no_cache && d.private && !d.no_store);
    let d = Directives::parse([&b"max-age=\"30\""[..]]);
    assert_eq!(d.max_age, Some(30));
    let d = Directives::parse([&b"max-age=-1"[..]]);
    assert!(d.invalid);
    let d = Directives::parse([&b"max-age=99999999999999999999"[..]]);
    assert_eq!(d.max_age, Some(DELTA_MAX));
    let d = Directives::parse([&b"max-stale, min-fresh=10, only-if-cached"[..]]);
    assert_eq!(
        (d.max_stale, d.min_fresh, d.only_if_cached),
        (Some(u64::MAX), Some(10), true)
    );
}

#[test]
fn storable_follows_section_3() {
    let none = Directives::default();
    assert_eq!(storable(200, &fields(&[]), &none, false), Storable::Yes);
    assert!(matches!(
        storable(200, &fields(&[("cache-control", "no-store")]), &none, false),
        Storable::No(_)
    ));
    assert!(matches!(
        storable(
            200,
            &fields(&[("cache-control", "private, max-age=60")]),
            &none,
            false
        ),
        Storable::No(_)
    ));
    // 201 is not heuristically cacheable: it needs explicit freshness.
    assert!(matches!(
        storable(201, &fields(&[]), &none, false),
        Storable::No(_)
    ));
    assert_eq!(
        storable(
            201,
            &fields(&[("cache-control", "max-age=5")]),
            &none,
            false
        ),
        Storable::Yes
    );
    assert!(matches!(
        storable(
            206,
            &fields(&[("cache-control", "max-age=5")]),
            &none,
            false
        ),
        Storable::No(_)
    ));
    // Authorization: only with public, must-revalidate or s-maxage.
    assert!(matches!(
        storable(200, &fields(&[("cache-control", "max-age=5")]), &none, true),
        Storable::No(_)
    ));
    assert_eq!(
        storable(
            200,
            &fields(&[("cache-control", "public, max-age=5")]),
            &none,
            true
        ),
        Storable::Yes
    );
    let req = Directives::parse([&b"no-store"[..]]);
    assert!(matches!(
        storable(200, &fields(&[]), &req, false),
        Storable::No(_)
    ));
    assert!(matches!(
        storable(200, &fields(&[("vary", "Accept, *")]), &none, false),
        Storable::No(_)
    ));
    assert_eq!(
        storable(
            200,
            &fields(&[("cache-control", "no-store, must-understand")]),
            &none,
            false
        ),
        Storable::Yes
    );
}

#[test]
fn lifetime_prefers_s_maxage_then_max_age_then_expires_then_heuristics() {
    let f = fields(&[("cache-control", "max-age=10, s-maxage=20")]);
    assert_eq!(freshness_lifetime(200, &f, T0, 300), 20);
    let f = fields(&[
        ("cache-control", "max-age=10"),
        ("expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
    ]);
    assert_eq!(freshness_lifetime(200, &f, T0, 300), 10);
    let f = fields(&[
        ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ("expires", "Tue, 14 Nov 2023 22:14:20 GMT"),
    ]);
    assert_eq!(freshness_lifetime(200, &f, T0, 300), 60);
    let f = fields(&[("expires", "0")]);
    assert_eq!(freshness_lifetime(200, &f, T0, 300), 0);
    // 10% of the 1000 s since Last-Modified, under the ceiling.
    let f = fields(&[
        ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT"),
    ]);
    assert_eq!(freshness_lifetime(200, &f, T0, 300), 100);
    assert_eq!(freshness_lifetime(200, &f, T0, 50), 50);
    assert_eq!(freshness_lifetime(201, &f, T0, 300), 0);
    assert_eq!(freshness_lifetime(200, &fields(&[]), T0, 300), 0);
}

#[test]
fn age_is_corrected_for_date_age_and_delay() {
    let f = Freshness {
        request_ms: T0 * 1000,
        response_ms: T0 * 1000 + 2000,
        date_s: Some(T0 - 10),
        age_s: 5,
        lifetime_s: 60,
        ..Freshness::default()
    };
    // apparent 12, corrected age 5 + 2 = 7: initial 12; 3 s resident.
    assert_eq!(f.current_age(T0 * 1000 + 5000), 15);
    assert_eq!(
        reuse(&f, &Directives::default(), false, T0 * 1000 + 5000),
        Reuse::Fresh
    );
    assert_eq!(
        reuse(&f, &Directives::default(), false, T0 * 1000 + 60_000),
        Reuse::Validate
    );
}

#[test]
fn request_directives_narrow_or_widen_reuse() {
    let now = T0 * 1000;
    let f = Freshness {
        request_ms: now,
        response_ms: now,
        date_s: Some(T0),
        lifetime_s: 100,
        ..Freshness::default()
    };
    let later = now + 50_000;
    let d = |s: &'static str| Directives::parse([s.as_bytes()]);
    assert_eq!(reuse(&f, &d("max-age=60"), false, later), Reuse::Fresh);
    assert_eq!(reuse(&f, &d("max-age=40"), false, later), Reuse::Validate);
    assert_eq!(reuse(&f, &d("max-age=0"), false, now), Reuse::Validate);
    assert_eq!(reuse(&f, &d("min-fresh=60"), false, later), Reuse::Validate);
    assert_eq!(reuse(&f, &d("no-cache"), false, now), Reuse::Validate);
    assert_eq!(
        reuse(&f, &Directives::default(), true, now),
        Reuse::Validate
    );
    let stale = now + 150_000;
    assert_eq!(reuse(&f, &d("max-stale=60"), false, stale), Reuse::Stale);
    assert_eq!(reuse(&f, &d("max-stale=10"), false, stale), Reuse::Validate);
    assert_eq!(reuse(&f, &d("max-stale"), false, stale), Reuse::Stale);
    let strict = Freshness {
        must_revalidate: true,
        ..f.clone()
    };
    assert_eq!(
        reuse(&strict, &d("max-stale"), false, stale),
        Reuse::Validate
    );
    let no_cache = Freshness {
        no_cache: true,
        ..f
    };
    assert_eq!(
        reuse(&no_cache, &Directives::default(), false, now),
        Reuse::Validate
    );
}

#[test]
fn a_bad_age_makes_a_response_stale() {
    for age in [
        &["0, 0"][..],
        &["0", "0"],
        &["1.5"],
        &["-1"],
        &["old"],
        &["1;a=b"],
    ] {
        let h: Vec<(&'static str, &'static str)> = age.iter().map(|a| ("age", *a)).collect();
        let f = fields(&[&[("cache-control", "max-age=3600")][..], &h].concat());
        assert!(f.age_invalid, "{age:?}");
        assert_eq!(freshness_lifetime(200, &f, T0, 300), 0, "{age:?}");
    }
    assert!(!fields(&[("age", "10")]).age_invalid);
}

#[test]
fn surrogate_control_wins_over_cache_control() {
    let none = Directives::default();
    let f = fields(&[
        ("surrogate-control", "max-age=30"),
        ("cache-control", "no-store"),
    ]);
    assert_eq!(storable(200, &f, &none, false), Storable::Yes);
    assert_eq!(freshness_lifetime(200, &f, T0, 300), 30);
    let f = fields(&[
        ("surrogate-control", "no-store"),
        ("cache-control", "max-age=60"),
    ]);
    assert!(matches!(storable(200, &f, &none, false), Storable::No(_)));
    let f = fields(&[
        ("surrogate-control", "max-age=30;cdn"),
        ("cache-control", "max-age=5"),
    ]);
    assert_eq!(freshness_lifetime(200, &f, T0, 300), 5);
    let f = fields(&[
        ("surrogate-control", "max-age=1, max-age=30;turnpike"),
        ("cache-control", "max-age=5"),
    ]);
    assert_eq!(freshness_lifetime(200, &f, T0, 300), 30);
}

#[test]
fn unknown_statuses_need_explicit_freshness() {
    let none = Directives::default();
    assert_eq!(
        storable(
            599,
            &fields(&[("cache-control", "max-age=60")]),
            &none,
            false
        ),
        Storable::Yes
    );
    assert!(matches!(
        storable(599, &fields(&[]), &none, false),
        Storable::No(_)
    ));
    let mu = fields(&[("cache-control", "max-age=60, must-understand")]);
    assert!(matches!(storable(599, &mu, &none, false), Storable::No(_)));
}

#[test]
fn vary_fields_are_collected_once_and_star_noted() {
    let f = fields(&[("vary", "Accept, accept-encoding"), ("Vary", "ACCEPT")]);
    assert_eq!(f.vary, [&b"Accept"[..], b"accept-encoding"]);
    assert!(!f.vary_any);
    assert!(fields(&[("vary", "*")]).vary_any);
}
