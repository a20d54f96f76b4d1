//! Replays the committed corpus through each harness without libFuzzer, so the seeds and every
//! input fuzzing kept stay checked on stable Rust: `cargo test` in this directory.

use std::fs;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{} fails", path.display());
        n += 1;
    }
    assert!(n > 0, "empty corpus for {target}");
}

#[test]
fn request_stream_corpus() {
    replay("request_stream", turnpike_fuzz::request_stream::check);
}

#[test]
fn chunked_corpus() {
    replay("chunked", turnpike_fuzz::chunked::check);
}

#[test]
fn response_head_corpus() {
    replay("response_head", turnpike_fuzz::response_head::check);
}

#[test]
fn cluster_wire_corpus() {
    replay("cluster_wire", turnpike_fuzz::cluster_wire::check);
}

#[test]
fn sigv4_corpus() {
    replay("sigv4", turnpike_fuzz::sigv4::check);
}

#[test]
fn auth_policy_corpus() {
    replay("auth_policy", turnpike_fuzz::auth_policy::check);
}

#[test]
fn jws_corpus() {
    replay("jws", turnpike_fuzz::jws::check);
}

#[test]
fn function_response_corpus() {
    replay("function_response", turnpike_fuzz::function_response::check);
}

#[test]
fn template_corpus() {
    replay("template", turnpike_fuzz::template::check);
}

#[test]
fn jsonpath_corpus() {
    replay("jsonpath", turnpike_fuzz::jsonpath::check);
}

#[test]
fn websocket_frames_corpus() {
    replay("websocket_frames", turnpike_fuzz::websocket_frames::check);
}
