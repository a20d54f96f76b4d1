//! Request validation (`turnpike_core::validation::RequestValidation::check_body`): what a
//! request on a route with a model pays, the body parsed into JSON and checked against a
//! compiled draft-4 schema. The body is ~1 KiB of JSON with the schema's 10 properties (strings
//! with patterns and lengths, numbers with bounds, an enum, an array of strings, a nested
//! object); `valid` conforms, `invalid` breaks three rules (its errors are formatted, as the
//! refusal's `validationErrorString`).

use std::{hint::black_box, sync::Arc};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use turnpike_benches::{CountingAlloc, print_allocations};
use turnpike_core::validation::{Model, RequestValidation};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn validation() -> RequestValidation {
    let schema = json!({
        "type": "object",
        "required": ["id", "name", "email", "price", "type"],
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "name": {"type": "string", "minLength": 1, "maxLength": 128},
            "email": {"type": "string", "pattern": "^[^@ ]+@[^@ ]+$"},
            "price": {"type": "number", "minimum": 0, "maximum": 100000},
            "type": {"enum": ["dog", "cat", "fish", "bird"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 32}, "maxItems": 16},
            "description": {"type": "string", "maxLength": 2048},
            "available": {"type": "boolean"},
            "created": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
            "owner": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "phone": {"type": "string"}}
            }
        },
        "additionalProperties": false
    });
    RequestValidation {
        required: Vec::new(),
        models: vec![(
            "application/json".into(),
            Arc::new(Model::compile("Pet", &schema).expect("schema")),
        )],
    }
}

fn body(valid: bool) -> Vec<u8> {
    let mut v = json!({
        "id": 4711,
        "name": "Rex the third, of the house of Barkington",
        "email": "owner.of.rex@example.com",
        "price": 249.99,
        "type": "dog",
        "tags": ["friendly", "vaccinated", "house-trained", "good-with-kids", "large"],
        "description": "A calm and friendly dog who likes long walks, children, and other dogs. \
            Vaccinated, chipped and house-trained. Lives with two cats and does not mind them. \
            Needs a garden and an owner who has time for three walks a day; eats dry food twice \
            a day and sleeps in a basket by the door. Comes with his lead, basket and toys, and \
            a folder of vet records going back to his first month. Rex was born in a large \
            litter in the spring, grew up on a farm with sheep, and knows the commands sit, stay, \
            come and heel; he is afraid of thunder and fireworks and should be kept indoors \
            on such nights, with the radio on.",
        "available": true,
        "created": "2026-11-30",
        "owner": {"name": "Alice Example", "phone": "+44 20 7946 0000"}
    });
    if !valid {
        v["price"] = json!(-1);
        v["type"] = json!("cow");
        v["color"] = json!("brown");
    }
    serde_json::to_vec(&v).expect("json")
}

fn bench(c: &mut Criterion) {
    let v = validation();
    let ok = body(true);
    let bad = body(false);
    assert!(ok.len() > 900 && ok.len() < 1200, "{} bytes", ok.len());
    assert!(v.check_body(None, &ok).is_ok());
    assert!(v.check_body(None, &bad).is_err());
    print_allocations("validation/valid_1KiB", || {
        black_box(v.check_body(None, black_box(&ok))).ok();
    });
    let mut g = c.benchmark_group("validation");
    g.bench_function("valid_1KiB_10_properties", |b| {
        b.iter(|| black_box(v.check_body(None, black_box(&ok))))
    });
    g.bench_function("invalid_1KiB_3_errors", |b| {
        b.iter(|| black_box(v.check_body(None, black_box(&bad))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = turnpike_benches::criterion();
    targets = bench
}
criterion_main!(benches);
