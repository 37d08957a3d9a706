//! Which request a record gets: the route of its operation (`routes` in the config), or the
//! top-level request. A route is compiled once at start-up with its fallbacks already applied,
//! so a record only looks its operation up.

use reqwest::Method;

use crate::config::{Config, ContentType, Route, RouteMethod};
use crate::header_template::HeaderTemplates;
use crate::path_template::PathTemplate;
use crate::template::{BodyTemplate, CompileError};

/// What a request carries the record in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// A body: the envelope or the body template's rendering.
    Body,
    /// The query (GET): the envelope flattened, after the path template's query.
    Query,
    /// Nothing (DELETE without a body template): the path says which record.
    Nothing,
}

/// One request definition, compiled.
pub struct Definition {
    /// The method when it is not the top-level one.
    pub method: Option<Method>,
    pub carrier: Carrier,
    pub body: Option<BodyTemplate>,
    pub path: Option<PathTemplate>,
    pub headers: Option<HeaderTemplates>,
}

impl Definition {
    /// Whether a record needs its envelope as text: sent as the body, or read by a template.
    pub fn needs_envelope(&self) -> bool {
        let read = self.body.as_ref().is_some_and(|t| t.reads("envelope"))
            || self.path.as_ref().is_some_and(|t| t.reads("envelope"))
            || self.headers.as_ref().is_some_and(|t| t.reads("envelope"));
        read || (self.carrier == Carrier::Body && self.body.is_none())
    }

    /// Its templates, body first.
    pub(crate) fn templates(&self) -> impl Iterator<Item = &crate::template::Compiled> {
        let body = self.body.as_ref().map(BodyTemplate::compiled);
        let path = self.path.as_ref().map(PathTemplate::compiled);
        let headers = self.headers.iter().flat_map(HeaderTemplates::compiled);
        body.into_iter().chain(path).chain(headers)
    }

    /// Nothing beyond the top-level shape: the record is sent as it is without templates.
    pub fn is_plain(&self) -> bool {
        self.method.is_none()
            && self.body.is_none()
            && self.path.is_none()
            && self.headers.is_none()
    }
}

/// The compiled routes: the top-level request, and a definition (or `None`: skip) per routed
/// operation.
pub struct Routes {
    default: Definition,
    by_operation: Vec<(&'static str, Option<Definition>)>,
}

impl Routes {
    pub fn compile(config: &Config) -> Result<Self, CompileError> {
        let request = config.request.clone().unwrap_or_default();
        let top = Route {
            body: request.body.clone(),
            path: request.path.clone(),
            headers: (!request.headers.is_empty()).then(|| request.headers.clone()),
            ..Route::default()
        };
        let default = definition("request", &top, None, config)?;
        let by_operation = config
            .routes
            .iter()
            .map(|(op, route)| {
                let compiled = match route.skip {
                    true => None,
                    false => Some(definition(
                        &format!("routes.{op}"),
                        route,
                        Some(&top),
                        config,
                    )?),
                };
                Ok((op, compiled))
            })
            .collect::<Result<_, CompileError>>()?;
        Ok(Routes {
            default,
            by_operation,
        })
    }

    /// The definition for a record of operation `op`; `None` when its records are skipped.
    pub fn definition(&self, op: &str) -> Option<&Definition> {
        match self.by_operation.iter().find(|(routed, _)| *routed == op) {
            Some((_, routed)) => routed.as_ref(),
            None => Some(&self.default),
        }
    }

    /// Every definition a record can get, with an operation that gets it: the top-level
    /// request (`None`: any operation without a route), then each route that sends.
    pub fn definitions(&self) -> impl Iterator<Item = (Option<&'static str>, &Definition)> {
        let routed = self
            .by_operation
            .iter()
            .filter_map(|(op, definition)| Some((Some(*op), definition.as_ref()?)));
        std::iter::once((None, &self.default)).chain(routed)
    }

    /// Whether records are routed by operation at all (the Airbyte dialect then looks for
    /// `_ab_cdc_deleted_at`).
    pub fn by_operation(&self) -> bool {
        !self.by_operation.is_empty()
    }

    /// Whether every record is sent as it is, without a template.
    pub fn is_plain(&self) -> bool {
        self.by_operation.is_empty() && self.default.is_plain()
    }
}

/// The definition of `route` (`field` in the config), its unset parts taken from `top`, the
/// top-level request (`None` when `route` is it).
fn definition(
    field: &str,
    route: &Route,
    top: Option<&Route>,
    config: &Config,
) -> Result<Definition, CompileError> {
    let content_type = config
        .request
        .as_ref()
        .map_or(ContentType::Json, |r| r.content_type);
    let carrier = match route.method {
        Some(RouteMethod::Get) => Carrier::Query,
        Some(RouteMethod::Delete) if route.body.is_none() => Carrier::Nothing,
        None if config.method == crate::config::Method::Get => Carrier::Query,
        _ => Carrier::Body,
    };
    // A body is inherited only by methods that carry one by default.
    let inherits_body = !matches!(route.method, Some(RouteMethod::Get | RouteMethod::Delete));
    let pick = |own: Option<&String>, from_top: Option<&String>, name: &str| {
        own.map(|s| (format!("{field}.{name}"), s.clone()))
            .or_else(|| from_top.map(|s| (format!("request.{name}"), s.clone())))
    };
    let body = pick(
        route.body.as_ref(),
        top.and_then(|t| t.body.as_ref()).filter(|_| inherits_body),
        "body",
    );
    let path = pick(
        route.path.as_ref(),
        top.and_then(|t| t.path.as_ref()),
        "path",
    );
    let headers = route
        .headers
        .as_ref()
        .map(|h| (format!("{field}.headers"), h))
        .or_else(|| {
            top.and_then(|t| t.headers.as_ref())
                .map(|h| ("request.headers".to_string(), h))
        });
    Ok(Definition {
        method: route.method.map(RouteMethod::http),
        carrier,
        body: body
            .map(|(name, source)| BodyTemplate::compile(&name, &source, content_type))
            .transpose()?,
        path: path
            .map(|(name, source)| PathTemplate::compile(&name, &source))
            .transpose()?,
        headers: headers
            .map(|(name, entries)| HeaderTemplates::compile(&name, entries))
            .transpose()?,
    })
}

/// What is wrong with a request definition (the top-level one, or a destination object's: the
/// connection with the object's request and routes): a template that does not compile (with its
/// line and column), or a request or route the method or batching cannot carry.
pub fn problems(config: &Config) -> Vec<String> {
    let mut problems = request_problems(config);
    problems.extend(Routes::compile(config).err().map(|e| e.to_string()));
    for (op, route) in config.routes.iter() {
        problems.extend(route_problem(route, config).map(|p| format!("routes.{op}: {p}")));
    }
    problems
}

/// What is wrong with `request`: a template the method or batching cannot carry.
fn request_problems(config: &Config) -> Vec<String> {
    use crate::config::{ContentType, Method};
    let mut problems = Vec::new();
    let Some(request) = &config.request else {
        return problems;
    };
    for (field, set) in [
        ("request.path", request.path.is_some()),
        ("request.headers", !request.headers.is_empty()),
    ] {
        if set && config.batch_size > 1 {
            problems.push(format!(
                "{field}: differs per record; batch_size is {}, it must be 1",
                config.batch_size
            ));
        }
    }
    if let Some(batch_body) = &request.batch_body {
        problems.extend(
            crate::template::BatchTemplate::compile(batch_body)
                .err()
                .map(|e| e.to_string()),
        );
        if config.batch_size < 2 {
            problems
                .push("request.batch_body: frames a batch; batch_size must be more than 1".into());
        }
    }
    if request.body.is_none() {
        if request.content_type != ContentType::Json {
            problems.push("request.content_type: needs request.body (the envelope is JSON)".into());
        }
        return problems;
    }
    if config.method == Method::Get {
        problems.push("request.body: GET sends no body; use POST, PUT or PATCH".into());
    }
    if config.batch_size > 1 && request.content_type != ContentType::Json {
        problems.push(format!(
            "request.content_type: batch_size {} sends a JSON array of bodies; only application/json can be batched",
            config.batch_size
        ));
    }
    problems
}

/// Why one route cannot be sent as configured.
fn route_problem(route: &Route, config: &Config) -> Option<String> {
    let sends_body = match route.method {
        Some(RouteMethod::Get) => false,
        Some(RouteMethod::Delete) => route.body.is_some(),
        Some(_) => true,
        None => config.method != crate::config::Method::Get,
    };
    let has_parts = route.method.is_some()
        || route.path.is_some()
        || route.body.is_some()
        || route.headers.is_some();
    if route.skip {
        return has_parts
            .then(|| "skip sends nothing; remove its method, path, body and headers".into());
    }
    if config.batch_size > 1 {
        return Some(format!(
            "a batch is one request for records of any operation; batch_size is {}, it must be 1 (or the route must skip)",
            config.batch_size
        ));
    }
    let gets = match route.method {
        Some(method) => method == RouteMethod::Get,
        None => config.method == crate::config::Method::Get,
    };
    if gets && route.body.is_some() {
        return Some("GET sends the record in its query, not a body".into());
    }
    if sends_body && config.method == crate::config::Method::Get {
        return Some("its request has a body, but the top-level method is GET (which sends none): set method to POST, PUT or PATCH".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn config(mut config: Value) -> Config {
        config["url"] = json!("http://h/hook");
        serde_json::from_value(config).unwrap()
    }

    fn found(value: Value) -> Vec<String> {
        problems(&config(value))
    }

    const PER_RECORD: &str = "differs per record; batch_size is 2, it must be 1";
    const TEXT_BODY: &str = "{{ op }}";

    fn compiled(value: Value) -> Routes {
        Routes::compile(&config(value)).unwrap()
    }

    fn name(template: Option<&crate::template::Compiled>) -> Option<&str> {
        template.map(|t| &*t.name)
    }

    #[test]
    fn each_operation_gets_its_route_with_the_top_levels_parts_where_it_has_none() {
        let request = json!({"body": "{}", "path": "/top", "headers": ["X-Top: 1"]});
        let routes = json!({"delete": {"method": "DELETE"}, "update": {"method": "PATCH"},
            "create": {"method": "DELETE", "body": "{}"}, "append": {"skip": true},
            "upsert": {"method": "GET", "path": "/own"}});
        let routes = compiled(json!({"request": request, "routes": routes}));
        assert!(routes.by_operation() && !routes.is_plain());
        assert!(routes.definition("append").is_none());
        let delete = routes.definition("delete").unwrap();
        assert_eq!(
            (delete.method.clone(), delete.carrier),
            (Some(Method::DELETE), Carrier::Nothing)
        );
        assert!(delete.body.is_none(), "DELETE does not inherit the body");
        assert_eq!(
            name(delete.path.as_ref().map(|p| p.compiled())),
            Some("request.path")
        );
        let headers = delete
            .headers
            .as_ref()
            .map(|h| h.compiled().next().unwrap());
        assert_eq!(name(headers), Some("request.headers"));
        let update = routes.definition("update").unwrap();
        assert_eq!(update.carrier, Carrier::Body);
        assert_eq!(
            name(update.body.as_ref().map(|b| b.compiled())),
            Some("request.body")
        );
        let create = routes.definition("create").unwrap();
        assert_eq!(create.carrier, Carrier::Body);
        assert_eq!(
            name(create.body.as_ref().map(|b| b.compiled())),
            Some("routes.create.body")
        );
        let upsert = routes.definition("upsert").unwrap();
        assert_eq!(upsert.carrier, Carrier::Query);
        assert!(upsert.body.is_none(), "GET does not inherit the body");
        assert_eq!(
            name(upsert.path.as_ref().map(|p| p.compiled())),
            Some("routes.upsert.path")
        );
        let other = routes.definition("update_or_not").unwrap();
        assert!(other.method.is_none() && other.carrier == Carrier::Body);
        assert_eq!(
            name(other.body.as_ref().map(|b| b.compiled())),
            Some("request.body")
        );
        let (ops, _): (Vec<_>, Vec<_>) = routes.definitions().unzip();
        assert_eq!(
            ops,
            [
                None,
                Some("upsert"),
                Some("update"),
                Some("create"),
                Some("delete")
            ]
        );
    }

    #[test]
    fn a_record_needs_its_envelope_when_it_is_the_body_or_a_template_reads_it() {
        let plain = compiled(json!({}));
        assert!(plain.is_plain() && !plain.by_operation());
        let default = plain.definition("upsert").unwrap();
        assert!(default.is_plain() && default.needs_envelope());
        let top_get = compiled(json!({"method": "GET"}));
        assert_eq!(
            top_get.definition("upsert").unwrap().carrier,
            Carrier::Query
        );
        assert!(!top_get.definition("upsert").unwrap().needs_envelope());
        let needs = |request: Value| {
            let routes = compiled(json!({ "request": request }));
            let definition = routes.definition("upsert").unwrap();
            assert!(!definition.is_plain() && !routes.is_plain(), "{request}");
            definition.needs_envelope()
        };
        assert!(!needs(json!({"body": "{{ record | tojson }}"})));
        assert!(needs(json!({"body": "{{ envelope | tojson }}"})));
        assert!(
            needs(json!({"path": "/{{ op }}"})),
            "the envelope is the body"
        );
        assert!(!needs(json!({"path": "/{{ op }}", "body": "{}"})));
        assert!(needs(
            json!({"path": "/{{ envelope._type }}", "body": "{}"})
        ));
        assert!(!needs(json!({"headers": ["X: {{ op }}"], "body": "{}"})));
        assert!(needs(
            json!({"headers": ["X: {{ envelope._type }}"], "body": "{}"})
        ));
        let routed = compiled(
            json!({"routes": {"delete": {"method": "DELETE", "path": "/{{ envelope._type }}"}}}),
        );
        let delete = routed.definition("delete").unwrap();
        assert!(!delete.is_plain() && delete.needs_envelope());
        let bare = compiled(json!({"routes": {"delete": {"method": "DELETE", "path": "/x"}}}));
        assert!(!bare.definition("delete").unwrap().needs_envelope());
    }

    #[test]
    fn a_request_its_method_or_batching_cannot_carry_is_refused() {
        let per_record = json!({"path": "/x", "headers": ["X: 1"]});
        assert_eq!(
            found(json!({"request": per_record, "batch_size": 2})),
            [
                format!("request.path: {PER_RECORD}"),
                format!("request.headers: {PER_RECORD}")
            ]
        );
        assert!(found(json!({"request": per_record, "batch_size": 1})).is_empty());
        let batch = json!({"batch_body": "{{ records | tojson }}"});
        assert_eq!(
            found(json!({"request": batch})),
            ["request.batch_body: frames a batch; batch_size must be more than 1"]
        );
        assert!(found(json!({"request": batch, "batch_size": 2})).is_empty());
        let broken = found(json!({"request": {"batch_body": "[{{ records }"}, "batch_size": 2}));
        assert!(
            broken.len() == 1 && broken[0].starts_with("request.batch_body: "),
            "{broken:?}"
        );
        let text = |body: Option<&str>| json!({"body": body, "content_type": "text/plain"});
        assert_eq!(
            found(json!({"request": text(None)})),
            ["request.content_type: needs request.body (the envelope is JSON)"]
        );
        assert!(found(json!({"request": {"content_type": "application/json"}})).is_empty());
        assert_eq!(
            found(json!({"request": {"body": "{}"}, "method": "GET"})),
            ["request.body: GET sends no body; use POST, PUT or PATCH"]
        );
        assert_eq!(
            found(json!({"request": text(Some(TEXT_BODY)), "batch_size": 2})),
            ["request.content_type: batch_size 2 sends a JSON array of bodies; only application/json can be batched"]
        );
        assert!(found(json!({"request": text(Some(TEXT_BODY))})).is_empty());
        assert!(found(json!({"request": {"body": "{}"}, "batch_size": 2})).is_empty());
    }

    #[test]
    fn a_skipped_route_has_no_parts_and_a_route_needs_unbatched_records() {
        let skip = "skip sends nothing; remove its method, path, body and headers";
        for part in [
            json!({"method": "DELETE"}),
            json!({"path": "/x"}),
            json!({"body": "{}"}),
            json!({"headers": ["X: 1"]}),
        ] {
            let mut route = part.clone();
            route["skip"] = json!(true);
            let routes = json!({ "delete": route });
            assert_eq!(
                found(json!({ "routes": routes })),
                [format!("routes.delete: {skip}")],
                "{part}"
            );
        }
        let skipped = json!({"delete": {"skip": true}});
        assert!(found(json!({"routes": skipped, "batch_size": 2})).is_empty());
        let routed = json!({"delete": {"method": "DELETE"}});
        assert_eq!(
            found(json!({"routes": routed, "batch_size": 2})),
            ["routes.delete: a batch is one request for records of any operation; batch_size is 2, it must be 1 (or the route must skip)"]
        );
        assert!(found(json!({ "routes": routed })).is_empty());
    }

    #[test]
    fn a_route_sends_a_body_only_where_its_method_carries_one() {
        let under = |method: &str, route: Value| {
            found(json!({"method": method, "routes": {"update": route}}))
        };
        let get_body = ["routes.update: GET sends the record in its query, not a body"];
        assert_eq!(
            under("POST", json!({"method": "GET", "body": "{}"})),
            get_body
        );
        assert_eq!(under("GET", json!({"body": "{}"})), get_body);
        let top_get = ["routes.update: its request has a body, but the top-level method is GET (which sends none): set method to POST, PUT or PATCH"];
        assert_eq!(under("GET", json!({"method": "PATCH"})), top_get);
        assert_eq!(
            under("GET", json!({"method": "DELETE", "body": "{}"})),
            top_get
        );
        assert!(under("GET", json!({"method": "DELETE", "path": "/x"})).is_empty());
        assert!(under("GET", json!({"method": "GET", "path": "/x"})).is_empty());
        assert!(under("GET", json!({"path": "/x"})).is_empty());
        assert!(under("POST", json!({"body": "{}"})).is_empty());
        let broken = under("POST", json!({"path": "/{{ recrod }}"}));
        assert!(
            broken.len() == 1 && broken[0].starts_with("routes.update.path: 'recrod'"),
            "{broken:?}"
        );
    }
}
