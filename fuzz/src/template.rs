//! Mapping templates (`turnpike_core::template`). The first byte picks the mode:
//!
//! - even: the rest is a template, compiled and, when it compiles, rendered twice over a fixed
//!   request (a JSON body with arrays and objects, parameters, headers, stage variables,
//!   `$context`) with small limits. Besides "no panic and no hang": a compile error's position
//!   lies inside the template; the two renders agree (output, overrides or error).
//! - odd: the rest is a body, rendered by fixed templates (AWS's PetStore and params
//!   examples, `$input.json('$')`, methods over `$input.path`). `$input.json('$')` over a JSON
//!   body gives back the same JSON; over a body that is not JSON (and not blank) it is
//!   `BodyNotJson`.

use std::sync::OnceLock;

use turnpike_core::{
    context::RequestContext,
    template::{MappingTemplate, RenderError, RenderLimits, TemplateInput},
};

const LIMITS: RenderLimits = RenderLimits {
    max_steps: 200_000,
    max_output: 1 << 20,
};

const BODY: &str = r#"{"a": {"b": [1, 2.5, "x", null, true]}, "items": [{"id": 1, "type": "dog", "price": 249.99}, {"id": 2, "type": "cat", "price": 0.5}], "s": "it's \"q\" é", "n": -3}"#;

const FIXED: &[&str] = &[
    "$input.json('$')",
    "#set($inputRoot = $input.path('$'))\n[\n#foreach($elem in $inputRoot)\n  {\n    \"description\" : \"Item $elem.id is a $elem.type.\",\n    \"askingPrice\" : $elem.price\n  }#if($foreach.hasNext),#end\n\n#end\n]",
    "#set($r = $input.path('$'))#foreach($k in $r.keySet())$k=$util.escapeJavaScript($r.get($k).toString()) $r.get($k).size()#end",
    "$input.path('$..id') $input.json('$.items[?(@.price < 10)]') $input.path('$.items[-1:]')",
    "#set($p = $input.params())#foreach($t in $p.keySet())$t:#foreach($n in $p.get($t).keySet())$n=$p.get($t).get($n);#end#end",
    "#set($b = $input.path('$'))#set($b.extra = [1, {'k': $b}])$b $util.parseJson($input.body)",
];

fn fixed() -> &'static [MappingTemplate] {
    static T: OnceLock<Vec<MappingTemplate>> = OnceLock::new();
    T.get_or_init(|| {
        FIXED
            .iter()
            .map(|s| MappingTemplate::compile(s).expect("fixed template"))
            .collect()
    })
}

fn render(
    t: &MappingTemplate,
    body: &[u8],
) -> (
    Vec<u8>,
    Result<turnpike_core::template::Overrides, RenderError>,
) {
    let ctx = RequestContext {
        request_id: "req-1",
        method: "POST",
        stage: "prod",
        path: "/prod/pets",
        ..RequestContext::default()
    };
    let input = TemplateInput {
        body,
        path: &[("petId", "7")],
        querystring: &[("q", "a b"), ("page", "2"), ("q", "c")],
        header: &[("Accept", "*/*"), ("X-Id", "h\"1")],
        stage_variables: &[("backend", "127.0.0.1:9000")],
        context: &ctx,
        status: Some(200),
    };
    let mut out = Vec::new();
    let r = t.render_with(&input, &mut out, &LIMITS);
    (out, r)
}

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let src = String::from_utf8_lossy(rest);
        match MappingTemplate::compile(&src) {
            Err(e) => {
                assert!(e.line >= 1 && e.column >= 1);
                assert!(e.line <= src.lines().count() + 1, "{e}");
            }
            Ok(t) => {
                let first = render(&t, BODY.as_bytes());
                let second = render(&t, BODY.as_bytes());
                assert_eq!(first, second, "two renders differ");
            }
        }
        return;
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(rest).ok();
    let blank = rest.iter().all(u8::is_ascii_whitespace);
    for (i, t) in fixed().iter().enumerate() {
        let (out, r) = render(t, rest);
        if i == 0 {
            match (&parsed, r) {
                (Some(v), Ok(_)) => {
                    let back: serde_json::Value =
                        serde_json::from_slice(&out).expect("$input.json('$') is JSON");
                    assert_eq!(&back, v, "$input.json('$') changed the body");
                }
                (None, Err(RenderError::BodyNotJson(_))) => assert!(!blank),
                (None, Ok(_)) => assert!(blank, "a body that is not JSON rendered"),
                (_, Err(RenderError::TooManySteps(_) | RenderError::OutputTooLarge(_))) => {}
                (p, Err(e)) => panic!("{e} (body parsed: {})", p.is_some()),
            }
        }
    }
}
