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
