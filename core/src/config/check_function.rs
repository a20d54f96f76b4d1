//! The functions part of a config check: `functions[]` and the `function` integrations that
//! name them (by name or by Lambda function ARN).

use std::time::Duration;

use super::{
    ConfigFile,
    check::Checker,
    model::{Api, FunctionSpec, IntegrationKind},
};

/// AWS's default function timeout and its maximum (ms).
const DEFAULT_TIMEOUT_MS: u64 = 3_000;
const MAX_TIMEOUT_MS: u64 = 900_000;
const DEFAULT_MEMORY_MB: u64 = 512;
const DEFAULT_QUEUE: u32 = 64;

/// The function a `function` integration names: a name, or the name at the end of a Lambda
/// function ARN (`arn:aws:lambda:us-east-1:123456789012:function:my-function`, optionally
/// with `:alias`), as AWS's integration URIs name them.
pub(super) fn function_name(s: &str) -> &str {
    match s.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.iter().position(|p| *p == "function") {
                Some(i) if i + 1 < parts.len() => {
                    let start = s.len() - rest.len()
                        + parts[..=i].iter().map(|p| p.len() + 1).sum::<usize>();
                    let name = &s[start..];
                    name.split(':').next().unwrap_or(name)
                }
                _ => s,
            }
        }
        None => s,
    }
}

impl Checker {
    /// Checks `functions[]` and resolves the `function` integrations of `apis` to them.
    pub(super) fn functions(&mut self, file: &ConfigFile, apis: &mut [Api]) -> Vec<FunctionSpec> {
        let mut out = Vec::with_capacity(file.functions.len());
        for (i, f) in file.functions.iter().enumerate() {
            let at = format!("functions[{i}]");
            if !super::check::is_name(&f.name) {
                self.err(
                    format!("{at}.name"),
                    format!("{:?}: use 1-128 letters, digits, '_', '-' or '.'", f.name),
                );
            }
            if file.functions[..i].iter().any(|o| o.name == f.name) {
                self.err(
                    format!("{at}.name"),
                    format!("{:?} is already a function", f.name),
                );
            }
            if f.command.is_empty() || f.command[0].is_empty() {
                self.err(format!("{at}.command"), "the program to run is missing");
            }
            let timeout = f.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
            if !(1..=MAX_TIMEOUT_MS).contains(&timeout) {
                self.err(
                    format!("{at}.timeout_ms"),
                    format!("{timeout}: expected 1 to {MAX_TIMEOUT_MS}"),
                );
            }
            let memory = f.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
            if !(64..=10_240).contains(&memory) {
                self.err(
                    format!("{at}.memory_mb"),
                    format!("{memory}: expected 64 to 10240 (AWS allows 128 to 10240)"),
                );
            }
            let concurrency = f.concurrency.unwrap_or(1);
            if !(1..=256).contains(&concurrency) {
                self.err(
                    format!("{at}.concurrency"),
                    format!("{concurrency}: expected 1 to 256 processes"),
                );
            }
            let queue = f.queue.unwrap_or(DEFAULT_QUEUE);
            if !(1..=100_000).contains(&queue) {
                self.err(
                    format!("{at}.queue"),
                    format!("{queue}: expected 1 to 100000"),
                );
            }
            for k in f.environment.keys() {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    self.err(
                        format!("{at}.environment.{k}"),
                        "not a valid environment variable name",
                    );
                }
            }
            out.push(FunctionSpec {
                name: f.name.clone(),
                arn: format!(
                    "arn:aws:lambda:{}:{}:function:{}",
                    file.gateway.region, file.gateway.account_id, f.name
                ),
                region: file.gateway.region.clone(),
                command: f.command.clone(),
                working_dir: f.working_dir.clone(),
                environment: f
                    .environment
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                timeout: Duration::from_millis(timeout),
                memory_bytes: memory << 20,
                concurrency,
                queue,
            });
        }
        for (a, api) in apis.iter_mut().enumerate() {
            for z in &mut api.authorizers {
                if let crate::auth::model::AuthorizerKind::Request(r) = &mut z.kind
                    && let Some((name, index)) = &mut r.function
                {
                    match out.iter().position(|s| s.name == *name) {
                        Some(i) => *index = i as u32,
                        None => self.err(
                            format!("apis[{a}].authorizers.{}.function", z.name),
                            format!("no function named {name:?} in functions"),
                        ),
                    }
                }
            }
            for integ in &mut api.integrations {
                if let IntegrationKind::Function(f) = &mut integ.kind {
                    match out.iter().position(|s| s.name == f.function) {
                        Some(i) => f.index = i as u32,
                        None => self.err(
                            format!("apis[{a}].integrations.{}.function", integ.name),
                            format!("no function named {:?} in functions", f.function),
                        ),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn arns_name_their_function() {
        assert_eq!(function_name("my-function"), "my-function");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:my-function"),
            "my-function"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:my-function:live"),
            "my-function"
        );
    }
}
