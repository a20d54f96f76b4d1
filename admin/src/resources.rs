//! The config document's parts as REST resources: `/v1/config`, `/v1/apis/{api}`,
//! `/v1/apis/{api}/{routes|integrations|stages}/{id}`, `/v1/domains/{name}`.
//!
//! Edits work on the document's JSON form, so one piece of code serves every collection; the
//! edited value is turned back into a [`ConfigFile`], which reports shape errors with their
//! document path (`apis[0].routes[2].integration`). Meaning is checked afterwards, on the whole
//! document, exactly as `turnpike check` does. Nothing here applies anything.

use serde_json::{Map, Value};
use turnpike_core::config::{ConfigError, ConfigFile};

/// An addressable part of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Config,
    Apis,
    Api(String),
    /// A collection inside an API: `routes`, `integrations` or `stages`.
    Children(String, Kind),
    Child(String, Kind, String),
    Domains,
    Domain(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Routes,
    Integrations,
    Stages,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Kind::Routes => "routes",
            Kind::Integrations => "integrations",
            Kind::Stages => "stages",
        }
    }

    /// Routes are named by their key, stages by their name; integrations are map entries.
    fn id_field(self) -> &'static str {
        match self {
            Kind::Routes => "key",
            Kind::Integrations | Kind::Stages => "name",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Routes => "route",
            Kind::Integrations => "integration",
            Kind::Stages => "stage",
        }
    }
}

impl Resource {
    /// Parses a path below `/v1` (percent-encoded ids decoded: a route is addressed by its
    /// key, e.g. `/v1/apis/shop/routes/GET%20%2Fusers%2F%7Bid%7D`).
    pub fn parse(path: &str) -> Option<Resource> {
        let rest = path.strip_prefix("/v1/")?;
        let parts: Vec<String> = rest
            .split('/')
            .map(percent_decode)
            .collect::<Option<Vec<_>>>()?;
        let p: Vec<&str> = parts.iter().map(String::as_str).collect();
        let kind = |s: &str| match s {
            "routes" => Some(Kind::Routes),
            "integrations" => Some(Kind::Integrations),
            "stages" => Some(Kind::Stages),
            _ => None,
        };
        Some(match p.as_slice() {
            ["config"] => Resource::Config,
            ["apis"] => Resource::Apis,
            ["apis", api] if !api.is_empty() => Resource::Api(api.to_string()),
            ["apis", api, k] if !api.is_empty() => Resource::Children(api.to_string(), kind(k)?),
            ["apis", api, k, id] if !api.is_empty() && !id.is_empty() => {
                Resource::Child(api.to_string(), kind(k)?, id.to_string())
            }
            ["domains"] => Resource::Domains,
            ["domains", name] if !name.is_empty() => Resource::Domain(name.to_string()),
            _ => return None,
        })
    }
}

/// Why an edit was refused, with the status it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError {
    pub status: u16,
    pub message: String,
    pub errors: Vec<ConfigError>,
}

impl EditError {
    fn new(status: u16, message: impl Into<String>) -> EditError {
        EditError {
            status,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    fn not_found(what: String) -> EditError {
        EditError::new(404, what)
    }

    pub fn invalid(errors: Vec<ConfigError>) -> EditError {
        EditError {
            status: 400,
            message: "invalid configuration".into(),
            errors,
        }
    }
}

/// A write on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// POST on a collection: add a new member (409 if its id exists).
    Create,
    /// PUT: replace the resource, creating a collection member if absent.
    Replace,
    /// PATCH: JSON merge patch (RFC 7386).
    Patch,
    Delete,
}

/// The resource's current value.
pub fn get(doc: &ConfigFile, r: &Resource) -> Result<Value, EditError> {
    let root = to_value(doc);
    let (at, _) = locate(&root, r)?;
    Ok(at.clone())
}

/// The document after `write` is applied to `r` with `body` (ignored for deletes).
pub fn edit(
    doc: &ConfigFile,
    r: &Resource,
    write: Write,
    body: Option<Value>,
) -> Result<ConfigFile, EditError> {
    let mut root = to_value(doc);
    let body = match (write, body) {
        (Write::Delete, _) => Value::Null,
        (_, Some(b)) => b,
        (_, None) => return Err(EditError::new(400, "this write needs a body")),
    };
    match r {
        Resource::Config => match write {
            Write::Replace => root = body,
            Write::Patch => merge_patch(&mut root, &body),
            _ => {
                return Err(EditError::new(
                    405,
                    "the config is replaced (PUT) or patched (PATCH)",
                ));
            }
        },
        Resource::Apis => {
            collection_write(array_field(&mut root, "apis"), "name", "API", write, body)?
        }
        Resource::Domains => collection_write(
            array_field(&mut root, "domains"),
            "name",
            "domain",
            write,
            body,
        )?,
        Resource::Api(name) => member_write(
            array_field(&mut root, "apis"),
            "name",
            name,
            "API",
            write,
            body,
        )?,
        Resource::Domain(name) => member_write(
            array_field(&mut root, "domains"),
            "name",
            name,
            "domain",
            write,
            body,
        )?,
        Resource::Children(api, kind) => {
            let api_value = api_mut(&mut root, api)?;
            match kind {
                Kind::Integrations => {
                    map_collection_write(object_field(api_value, "integrations"), write, body)?
                }
                _ => collection_write(
                    array_field(api_value, kind.field()),
                    kind.id_field(),
                    kind.noun(),
                    write,
                    body,
                )?,
            }
        }
        Resource::Child(api, kind, id) => {
            let api_value = api_mut(&mut root, api)?;
            match kind {
                Kind::Integrations => {
                    map_member_write(object_field(api_value, "integrations"), id, write, body)?
                }
                _ => member_write(
                    array_field(api_value, kind.field()),
                    kind.id_field(),
                    id,
                    kind.noun(),
                    write,
                    body,
                )?,
            }
        }
    }
    from_value(root)
}

fn to_value(doc: &ConfigFile) -> Value {
    serde_json::to_value(doc).unwrap_or(Value::Null)
}

/// Turns an edited document back into a `ConfigFile`, reporting shape errors with their path.
pub fn from_value(v: Value) -> Result<ConfigFile, EditError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path.is_empty() || path == "?" {
            ".".to_owned()
        } else {
            path
        };
        EditError::invalid(vec![ConfigError::new(path, e.inner().to_string())])
    })
}

fn locate<'v>(root: &'v Value, r: &Resource) -> Result<(&'v Value, String), EditError> {
    // Absent collections read as empty ones (the document leaves empty lists out).
    static EMPTY_LIST: Value = Value::Array(Vec::new());
    static EMPTY_MAP: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| Value::Object(Map::new()));
    let empty = &EMPTY_LIST;
    let find = |arr: Option<&'v Value>, field: &str, id: &str| -> Option<&'v Value> {
        arr?.as_array()?
            .iter()
            .find(|m| m.get(field).and_then(Value::as_str) == Some(id))
    };
    Ok(match r {
        Resource::Config => (root, String::new()),
        Resource::Apis => (root.get("apis").unwrap_or(empty), "apis".into()),
        Resource::Domains => (root.get("domains").unwrap_or(empty), "domains".into()),
        Resource::Api(a) => (
            find(root.get("apis"), "name", a)
                .ok_or_else(|| EditError::not_found(format!("no API named {a:?}")))?,
            String::new(),
        ),
        Resource::Domain(d) => (
            find(root.get("domains"), "name", d)
                .ok_or_else(|| EditError::not_found(format!("no domain named {d:?}")))?,
            String::new(),
        ),
        Resource::Children(a, k) => {
            let api = find(root.get("apis"), "name", a)
                .ok_or_else(|| EditError::not_found(format!("no API named {a:?}")))?;
            let none = if *k == Kind::Integrations {
                &*EMPTY_MAP
            } else {
                empty
            };
            (api.get(k.field()).unwrap_or(none), String::new())
        }
        Resource::Child(a, k, id) => {
            let api = find(root.get("apis"), "name", a)
                .ok_or_else(|| EditError::not_found(format!("no API named {a:?}")))?;
            let member = match k {
                Kind::Integrations => api.get("integrations").and_then(|m| m.get(id)),
                _ => find(api.get(k.field()), k.id_field(), id),
            };
            let member = member.ok_or_else(|| {
                EditError::not_found(format!("API {a:?} has no {} {id:?}", k.noun()))
            })?;
            (member, String::new())
        }
    })
}

fn api_mut<'v>(root: &'v mut Value, name: &str) -> Result<&'v mut Value, EditError> {
    array_field(root, "apis")
        .iter_mut()
        .find(|m| m.get("name").and_then(Value::as_str) == Some(name))
        .ok_or_else(|| EditError::not_found(format!("no API named {name:?}")))
}

/// `v` as an object, made one if it is not.
fn object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// The array under `key` in `v`, created empty if absent or not an array.
fn array_field<'v>(v: &'v mut Value, key: &str) -> &'v mut Vec<Value> {
    let field = object(v).entry(key).or_insert(Value::Null);
    if !field.is_array() {
        *field = Value::Array(Vec::new());
    }
    match field {
        Value::Array(a) => a,
        _ => unreachable!("just made an array"),
    }
}

/// The object under `key` in `v`, created empty if absent or not an object.
fn object_field<'v>(v: &'v mut Value, key: &str) -> &'v mut Map<String, Value> {
    object(object(v).entry(key).or_insert(Value::Null))
}

fn id_of<'v>(v: &'v Value, field: &str) -> Option<&'v str> {
    v.get(field).and_then(Value::as_str)
}

fn collection_write(
    arr: &mut Vec<Value>,
    field: &str,
    noun: &str,
    write: Write,
    body: Value,
) -> Result<(), EditError> {
    match write {
        Write::Create => {
            let id = id_of(&body, field)
                .ok_or_else(|| EditError::new(400, format!("the new {noun} needs a {field:?}")))?
                .to_owned();
            if arr.iter().any(|m| id_of(m, field) == Some(id.as_str())) {
                return Err(EditError::new(409, format!("{noun} {id:?} already exists")));
            }
            arr.push(body);
        }
        Write::Replace => match body {
            Value::Array(all) => *arr = all,
            _ => {
                return Err(EditError::new(
                    400,
                    format!("replacing all {noun}s takes a JSON array"),
                ));
            }
        },
        Write::Patch | Write::Delete => {
            return Err(EditError::new(
                405,
                format!("PATCH and DELETE apply to one {noun}, not the collection"),
            ));
        }
    }
    Ok(())
}

fn member_write(
    arr: &mut Vec<Value>,
    field: &str,
    id: &str,
    noun: &str,
    write: Write,
    mut body: Value,
) -> Result<(), EditError> {
    let at = arr.iter().position(|m| id_of(m, field) == Some(id));
    match write {
        Write::Create => {
            return Err(EditError::new(
                405,
                format!("POST creates in the {noun} collection"),
            ));
        }
        Write::Delete => {
            let i = at.ok_or_else(|| EditError::not_found(format!("no {noun} {id:?}")))?;
            arr.remove(i);
        }
        Write::Replace | Write::Patch => {
            let mut next = match (write, at) {
                (Write::Patch, Some(i)) => {
                    let mut v = arr[i].clone();
                    merge_patch(&mut v, &body);
                    v
                }
                (Write::Patch, None) => {
                    return Err(EditError::not_found(format!("no {noun} {id:?}")));
                }
                _ => std::mem::take(&mut body),
            };
            match next.get(field).and_then(Value::as_str) {
                Some(given) if given != id => {
                    return Err(EditError::new(
                        400,
                        format!("{field} {given:?} in the body differs from {id:?} in the URL"),
                    ));
                }
                Some(_) => {}
                None => {
                    if let Value::Object(o) = &mut next {
                        o.insert(field.to_owned(), Value::String(id.to_owned()));
                    }
                }
            }
            match at {
                Some(i) => arr[i] = next,
                None => arr.push(next),
            }
        }
    }
    Ok(())
}

fn map_collection_write(
    map: &mut Map<String, Value>,
    write: Write,
    body: Value,
) -> Result<(), EditError> {
    match write {
        Write::Create => {
            let Value::Object(mut o) = body else {
                return Err(EditError::new(
                    400,
                    "a new integration is a JSON object with a \"name\"",
                ));
            };
            let name = match o.remove("name") {
                Some(Value::String(n)) if !n.is_empty() => n,
                _ => return Err(EditError::new(400, "the new integration needs a \"name\"")),
            };
            if map.contains_key(&name) {
                return Err(EditError::new(
                    409,
                    format!("integration {name:?} already exists"),
                ));
            }
            map.insert(name, Value::Object(o));
        }
        Write::Replace => match body {
            Value::Object(all) => *map = all,
            _ => {
                return Err(EditError::new(
                    400,
                    "replacing all integrations takes a JSON object",
                ));
            }
        },
        Write::Patch | Write::Delete => {
            return Err(EditError::new(
                405,
                "PATCH and DELETE apply to one integration, not the collection",
            ));
        }
    }
    Ok(())
}

fn map_member_write(
    map: &mut Map<String, Value>,
    id: &str,
    write: Write,
    body: Value,
) -> Result<(), EditError> {
    match write {
        Write::Create => {
            return Err(EditError::new(
                405,
                "POST creates in the integrations collection",
            ));
        }
        Write::Delete => {
            map.remove(id)
                .ok_or_else(|| EditError::not_found(format!("no integration {id:?}")))?;
        }
        Write::Replace => {
            map.insert(id.to_owned(), body);
        }
        Write::Patch => {
            let at = map
                .get_mut(id)
                .ok_or_else(|| EditError::not_found(format!("no integration {id:?}")))?;
            merge_patch(at, &body);
        }
    }
    Ok(())
}

/// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    let t = object(target);
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
