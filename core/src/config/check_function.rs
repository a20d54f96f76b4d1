//! The functions part of a config check: `functions[]` and the `function` integrations that
//! name them (by name or by Lambda function ARN).

use std::time::Duration;

use super::{
    ConfigFile,
    check::Checker,
    file::FunctionFile,
    model::{Api, FunctionSpec, IntegrationKind, RemoteFunction},
};
use crate::{auth::sigv4::SigningKey, tls::TlsSource, uri::UriTemplate};

/// Lambda's Invoke API path (AWS Lambda API reference, "Invoke").
const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

/// AWS's default function timeout and its maximum (ms).
const DEFAULT_TIMEOUT_MS: u64 = 3_000;
const MAX_TIMEOUT_MS: u64 = 900_000;
const DEFAULT_MEMORY_MB: u64 = 512;
const DEFAULT_QUEUE: u32 = 64;

/// The function a `function` integration (or authorizer) names: a name, or the name in a
/// Lambda function ARN (`arn:aws:lambda:us-east-1:123456789012:function:my-function`), as
/// AWS's integration URIs name them. A qualifier (`:prod`, `:7`) other than `$LATEST` is
/// refused: the gateway runs one version of each function. Errors say why.
pub(super) fn function_ref(s: &str) -> Result<&str, String> {
    let (name, qualifier) = match s.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(7, ':').collect();
            let [partition, service, region, account, kind, name, ..] = parts[..] else {
                return Err(format!(
                    "{s:?} is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
                ));
            };
            if !partition.starts_with("aws")
                || service != "lambda"
                || region.is_empty()
                || account.len() != 12
                || !account.bytes().all(|b| b.is_ascii_digit())
                || kind != "function"
                || name.is_empty()
            {
                return Err(format!(
                    "{s:?} is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
                ));
            }
            (name, parts.get(6).copied())
        }
        None => match s.split_once(':') {
            Some((name, q)) => (name, Some(q)),
            None => (s, None),
        },
    };
    match qualifier {
        None | Some("$LATEST") => Ok(name),
        Some(q) => Err(format!(
            "{s:?}: the qualifier {q:?} is not followed (the gateway runs one version of each \
             function): name the function without it, or give a remote alias's whole Invoke URL \
             in functions[].invoke_uri (.../functions/{name}:{q}/invocations)"
        )),
    }
}

impl Checker {
    /// Checks `functions[]` and resolves the `function` integrations of `apis` to them.
    pub(super) fn functions(
        &mut self,
        file: &ConfigFile,
        apis: &mut [Api],
        src: &dyn TlsSource,
    ) -> Vec<FunctionSpec> {
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
            let remote = match &f.invoke_uri {
                Some(uri) => {
                    self.process_fields_unused(&at, f);
                    self.remote_function(&at, uri, f, &file.gateway.region, src)
                }
                None => {
                    if f.command.is_empty() || f.command[0].is_empty() {
                        self.err(
                            format!("{at}.command"),
                            "the program to run is missing (or give invoke_uri for a remote function)",
                        );
                    }
                    if f.credentials.is_some() {
                        self.err(
                            format!("{at}.credentials"),
                            "only a remote function (invoke_uri) signs its calls",
                        );
                    }
                    None
                }
            };
            if let Some(dir) = &f.working_dir
                && !std::path::Path::new(dir).is_dir()
            {
                // A warning, not an error: the check may run elsewhere (CI) than the gateway.
                self.warn(
                    format!("{at}.working_dir"),
                    format!("{dir:?} is not a directory here: the runtime cannot start in it"),
                );
            }
            let timeout = f.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
            self.range(&format!("{at}.timeout_ms"), timeout, 1, MAX_TIMEOUT_MS);
            // AWS allows 128 to 10240 MiB; smaller runtimes are fine here.
            let memory = f.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
            self.range(&format!("{at}.memory_mb"), memory, 64, 10_240);
            let concurrency = f.concurrency.unwrap_or(1);
            self.range(&format!("{at}.concurrency"), u64::from(concurrency), 1, 256);
            let queue = f.queue.unwrap_or(DEFAULT_QUEUE);
            self.range(&format!("{at}.queue"), u64::from(queue), 1, 100_000);
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
                concurrency: if remote.is_some() { 0 } else { concurrency },
                queue,
                remote,
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
                            super::terms::unknown_name(
                                "function",
                                name,
                                "in functions",
                                out.iter().map(|s| s.name.as_str()),
                            ),
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
                            super::terms::unknown_name(
                                "function",
                                &f.function,
                                "in functions",
                                out.iter().map(|s| s.name.as_str()),
                            ),
                        ),
                    }
                }
            }
        }
        out
    }
}

impl Checker {
    /// A remote function's settings that only make sense for processes the gateway runs.
    fn process_fields_unused(&mut self, at: &str, f: &FunctionFile) {
        let set = [
            ("command", !f.command.is_empty()),
            ("working_dir", f.working_dir.is_some()),
            ("environment", !f.environment.is_empty()),
            ("memory_mb", f.memory_mb.is_some()),
            ("concurrency", f.concurrency.is_some()),
            ("queue", f.queue.is_some()),
        ];
        for (field, _) in set.iter().filter(|(_, on)| *on) {
            self.err(
                format!("{at}.{field}"),
                "a remote function (invoke_uri) runs elsewhere: remove this setting",
            );
        }
    }

    /// `invoke_uri` and `credentials` of a remote function.
    fn remote_function(
        &mut self,
        at: &str,
        uri: &str,
        f: &FunctionFile,
        gateway_region: &str,
        src: &dyn TlsSource,
    ) -> Option<RemoteFunction> {
        let field = format!("{at}.invoke_uri");
        let t = match UriTemplate::parse(uri) {
            Ok(t) => t,
            Err(e) => {
                self.err(field, format!("{uri:?}: {e}"));
                return None;
            }
        };
        if t.stage_vars().next().is_some() || t.params().next().is_some() {
            self.err(
                field,
                format!("{uri:?}: a function's address takes no stage variables or {{param}}"),
            );
            return None;
        }
        let mut target = match t.for_stage("", &|_| None) {
            Ok(t) => t,
            Err(e) => {
                self.err(field, format!("{uri:?}: {e}"));
                return None;
            }
        };
        if target.query.is_some() {
            self.err(field, format!("{uri:?}: the Invoke API takes no query"));
            return None;
        }
        target.path = None;
        let given = uri_path(uri);
        let path = if given.is_empty() || given == "/" {
            let mut p = String::from(INVOKE_PREFIX);
            for b in f.name.bytes() {
                // Names are letters, digits, '_', '-' and '.': nothing to encode.
                p.push(b as char);
            }
            p.push_str("/invocations");
            p
        } else if given.starts_with(INVOKE_PREFIX) && given.ends_with("/invocations") {
            given.to_owned()
        } else {
            self.err(
                field,
                format!(
                    "{uri:?}: give the endpoint alone or the whole Invoke URL ({INVOKE_PREFIX}{{FunctionName}}/invocations)"
                ),
            );
            return None;
        };
        let signing = f.credentials.as_ref().map(|c| {
            let cat = format!("{at}.credentials");
            let mut read = |file: &str, what: &str| match src.read(file) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                    if text.is_empty() {
                        self.err(format!("{cat}.{what}"), "the file is empty");
                    }
                    text
                }
                Err(e) => {
                    self.err(format!("{cat}.{what}"), e);
                    String::new()
                }
            };
            let secret = read(&c.secret_file, "secret_file");
            let session_token = c
                .session_token_file
                .as_deref()
                .map(|p| read(p, "session_token_file"));
            if c.access_key_id.is_empty() || !c.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                self.err(
                    format!("{cat}.access_key_id"),
                    "expected letters and digits (AWS access key ids look like AKIAIOSFODNN7EXAMPLE)",
                );
            }
            let key = SigningKey {
                access_key_id: c.access_key_id.clone(),
                secret_access_key: secret.into_bytes().into(),
                session_token,
            };
            (key, signing_region(&target.host).unwrap_or(gateway_region).to_owned())
        });
        Some(RemoteFunction {
            target,
            path,
            signing,
        })
    }
}

/// The path of an absolute `http(s)://` URI (after the authority, before any query).
fn uri_path(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    rest.find('/').map_or("", |i| &rest[i..])
}

/// The region of an AWS Lambda endpoint host: `lambda.{region}.amazonaws.com` (and
/// `lambda-fips.` / `.amazonaws.com.cn`).
fn signing_region(host: &str) -> Option<&str> {
    let rest = host
        .strip_prefix("lambda.")
        .or_else(|| host.strip_prefix("lambda-fips."))?;
    let (region, domain) = rest.split_once('.')?;
    domain.starts_with("amazonaws.com").then_some(region)
}

#[cfg(test)]
mod tests {
    use super::{function_ref, signing_region, uri_path};

    #[test]
    fn lambda_endpoints_name_their_region() {
        assert_eq!(
            signing_region("lambda.eu-west-1.amazonaws.com"),
            Some("eu-west-1")
        );
        assert_eq!(
            signing_region("lambda-fips.us-east-1.amazonaws.com"),
            Some("us-east-1")
        );
        assert_eq!(
            signing_region("lambda.cn-north-1.amazonaws.com.cn"),
            Some("cn-north-1")
        );
        assert_eq!(signing_region("127.0.0.1"), None);
        assert_eq!(signing_region("lambda.example.com"), None);
    }

    #[test]
    fn invoke_uri_paths() {
        assert_eq!(uri_path("http://127.0.0.1:9000"), "");
        assert_eq!(uri_path("https://h/"), "/");
        assert_eq!(
            uri_path("http://h:9000/2015-03-31/functions/function/invocations?x"),
            "/2015-03-31/functions/function/invocations"
        );
    }

    #[test]
    fn arns_name_their_function() {
        assert_eq!(function_ref("my-function"), Ok("my-function"));
        assert_eq!(
            function_ref("arn:aws:lambda:us-east-1:123456789012:function:my-function"),
            Ok("my-function")
        );
        assert_eq!(
            function_ref("arn:aws:lambda:us-east-1:123456789012:function:my-function:$LATEST"),
            Ok("my-function")
        );
        assert_eq!(function_ref("my-function:$LATEST"), Ok("my-function"));
        for qualified in [
            "arn:aws:lambda:us-east-1:123456789012:function:my-function:live",
            "my-function:prod",
        ] {
            let e = function_ref(qualified).expect_err(qualified);
            assert!(e.contains("qualifier") && e.contains("invoke_uri"), "{e}");
        }
        for malformed in [
            "arn:aws:lambda:us-east-1:function:my-function",
            "arn:aws:s3:us-east-1:123456789012:function:my-function",
            "arn:aws:lambda:us-east-1:123456789012:layer:my-function",
            "arn:aws:lambda::123456789012:function:my-function",
        ] {
            assert!(function_ref(malformed).is_err(), "{malformed}");
        }
    }
}
