//! Mapping templates (`turnpike_core::template::MappingTemplate::render`): AWS's PetStore
//! response template over a ~1 KiB JSON array of pets, the body parsed once per render as the
//! gateway does it; and `compile`, which runs once per config apply.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use turnpike_benches::{CountingAlloc, print_allocations};
use turnpike_core::{
    context::RequestContext,
    template::{MappingTemplate, TemplateInput},
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const PETSTORE: &str = r#"#set($inputRoot = $input.path('$'))
[
#foreach($elem in $inputRoot)
  {
    "description" : "Item $elem.id is a $elem.type.",
    "askingPrice" : $elem.price
  }#if($foreach.hasNext),#end

#end
]"#;

fn body() -> Vec<u8> {
    let kinds = ["dog", "cat", "fish", "bird", "hamster", "rabbit"];
    let pets: Vec<serde_json::Value> = (1..=24)
        .map(|i| {
            serde_json::json!({
                "id": i,
                "type": kinds[i % kinds.len()],
                "price": 0.99 + (i * 37 % 250) as f64,
            })
        })
        .collect();
    serde_json::to_vec(&pets).expect("json")
}

fn bench(c: &mut Criterion) {
    let t = MappingTemplate::compile(PETSTORE).expect("template");
    let body = body();
    assert!(
        body.len() > 900 && body.len() < 1200,
        "{} bytes",
        body.len()
    );
    let ctx = RequestContext::default();
    let input = TemplateInput {
        body: &body,
        path: &[],
        querystring: &[],
        header: &[],
        stage_variables: &[],
        context: &ctx,
        status: Some(200),
    };
    let mut out = Vec::with_capacity(4096);
    t.render(&input, &mut out).expect("render");
    assert!(out.len() > 1500, "{} bytes out", out.len());
    print_allocations("template/petstore_1KiB", || {
        out.clear();
        black_box(t.render(&input, &mut out)).ok();
    });
    let mut g = c.benchmark_group("template");
    g.bench_function("petstore_render_1KiB", |b| {
        b.iter(|| {
            out.clear();
            black_box(t.render(black_box(&input), &mut out)).ok();
        })
    });
    g.bench_function("petstore_compile", |b| {
        b.iter(|| black_box(MappingTemplate::compile(black_box(PETSTORE))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = turnpike_benches::criterion();
    targets = bench
}
criterion_main!(benches);
