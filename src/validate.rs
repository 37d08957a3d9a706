//! Config validation against the same schema `spec` prints, with messages that name the field
//! and say what is wrong in words a person can act on. Values of secret fields never appear.

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::config::Config;
use crate::spec::connection_specification;

/// Every way a config can be refused, each already phrased for the user.
#[derive(Debug, thiserror::Error)]
#[error("invalid config: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// Validates the raw config JSON and turns it into a [`Config`], or names every violation.
pub fn load_config(raw: &Value) -> Result<Config, ConfigError> {
    let schema = connection_specification();
    let validator = jsonschema::draft7::new(&schema)
        .map_err(|e| ConfigError(vec![format!("internal: the spec does not compile: {e}")]))?;
    let mut problems: Vec<String> = validator.iter_errors(raw).map(|e| describe(&e)).collect();
    problems.dedup();
    if !problems.is_empty() {
        return Err(ConfigError(problems));
    }
    let config: Config =
        serde_json::from_value(raw.clone()).map_err(|e| ConfigError(vec![e.to_string()]))?;
    let mut problems = unknown_operations(raw);
    let password_in_url = config
        .url
        .credentials()
        .is_some_and(|c| !c.password.is_empty());
    if password_in_url && !matches!(config.auth, crate::config::Auth::None) {
        problems.push(
            "url: carries credentials (user:password@) and auth is also set; keep only one of them"
                .to_string(),
        );
    }
    problems.extend(
        crate::headers::static_headers(&config, crate::shape::Shape::of(&config))
            .err()
            .map(|e| e.to_string()),
    );
    problems.extend(
        config
            .standard_webhooks_secrets()
            .filter_map(|(field, secret)| {
                let problem = crate::signing::signing_key(secret).err()?;
                Some(crate::signing::BadSecret { field, problem }.to_string())
            }),
    );
    problems.extend(
        config
            .hmac_signature
            .as_ref()
            .and_then(|h| crate::hmac_header::HeaderSigner::new(h).err())
            .map(|e| e.to_string()),
    );
    if let crate::config::Auth::Oauth2ClientCredentials(oauth) = &config.auth {
        problems.extend(crate::oauth::validate(oauth).err().map(|e| e.to_string()));
    }
    problems.extend(
        config
            .proxy
            .as_ref()
            .and_then(|p| p.parsed().err())
            .map(|e| e.to_string()),
    );
    problems.extend(crate::routes::problems(&config));
    problems.extend(crate::objects::problems(&config));
    problems.extend(
        crate::tls::client_config(config.tls.as_ref())
            .err()
            .map(|e| e.to_string()),
    );
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError(problems))
    }
}

/// Routes keyed by something that is no operation: they would never match a record.
fn unknown_operations(raw: &Value) -> Vec<String> {
    use crate::config::OperationRoutes;
    let Some(routes) = raw.get("routes").and_then(Value::as_object) else {
        return Vec::new();
    };
    routes
        .keys()
        .filter(|op| !OperationRoutes::OPERATIONS.contains(&op.as_str()))
        .map(|op| {
            format!(
                "routes.{op}: '{op}' is not an operation; routes are keyed by one of {}",
                OperationRoutes::OPERATIONS.join(", ")
            )
        })
        .collect()
}

fn describe(error: &jsonschema::ValidationError) -> String {
    let path = error
        .instance_path()
        .as_str()
        .trim_start_matches('/')
        .replace('/', ".");
    let field = if path.is_empty() {
        "config".to_string()
    } else {
        path
    };
    let what = match error.kind() {
        ValidationErrorKind::Enum { options } => {
            let choices: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(|o| o.as_str().map(String::from).unwrap_or(o.to_string())).collect())
                .unwrap_or_default();
            format!("{} is not one of {}", error.instance(), choices.join(", "))
                .replace('"', "'")
        }
        ValidationErrorKind::Required { property } => {
            return format!("{field}: missing required field {}", property.to_string().replace('"', "'"))
        }
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::OneOfMultipleValid { .. } => {
            "does not match any of the allowed shapes (check its 'type' and the fields that type needs)"
                .to_string()
        }
        ValidationErrorKind::Pattern { .. } if field == "url" => "must start with http:// or https://".to_string(),
        _ => error.masked().to_string(),
    };
    format!("{field}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(v: Value) -> Vec<String> {
        load_config(&v).unwrap_err().0
    }

    #[test]
    fn accepts_old_valmi_configs() {
        load_config(&json!({"url": "http://localhost:9090", "method": "POST"})).unwrap();
        load_config(
            &json!({"url": "http://h/x", "method": "GET", "headers": ["A: b"],
            "run_time_args": {"chunk_size": 4, "run_id": "x", "anything": {"else": 1}}}),
        )
        .unwrap();
    }

    #[test]
    fn names_each_field_and_what_is_wrong() {
        assert_eq!(
            problems(json!({"url": "http://h", "method": "PUT "})),
            ["method: 'PUT ' is not one of POST, GET, PUT, PATCH"]
        );
        assert_eq!(
            problems(json!({"method": "GET"})),
            ["config: missing required field 'url'"]
        );
        let p = problems(json!({"url": "ftp://h", "concurrency": 0}));
        assert!(
            p.iter()
                .any(|m| m == "url: must start with http:// or https://"),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.starts_with("concurrency: ")), "{p:?}");
    }

    /// Problems only a parsed config shows, each named: a URL's password beside `auth` (a user
    /// name alone is no password), a route keyed by no operation, an `auth` of no known shape.
    #[test]
    fn names_what_only_a_parsed_config_shows() {
        let bearer = json!({"type": "bearer", "token": "t"});
        assert_eq!(
            problems(json!({"url": "http://u:pw@h", "auth": bearer})),
            ["url: carries credentials (user:password@) and auth is also set; keep only one of them"]
        );
        load_config(&json!({"url": "http://u@h", "auth": bearer})).unwrap();
        assert_eq!(
            problems(json!({"url": "http://h", "routes": {"frob": {"method": "POST"}}})),
            ["routes.frob: 'frob' is not an operation; routes are keyed by one of upsert, update, create, append, delete, append_dedup, overwrite, soft_delete"]
        );
        assert_eq!(
            problems(json!({"url": "http://h", "auth": {"type": "nope"}})),
            ["auth: does not match any of the allowed shapes (check its 'type' and the fields that type needs)"]
        );
    }

    /// OAuth2 settings that no token could be fetched with are refused with the rest of the
    /// config, before any input is read: a sync with nothing to send still hears of them.
    #[test]
    fn names_oauth_settings_no_token_could_be_fetched_with() {
        let oauth = |extra: Value| {
            let mut auth = json!({"type": "oauth2_client_credentials",
                "token_url": "https://h/token", "client_id": "i", "client_secret": "s"});
            auth.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            problems(json!({"url": "http://h", "auth": auth}))
        };
        assert_eq!(
            oauth(json!({"token_url": "ftp://h/token"})),
            ["auth.token_url: the scheme 'ftp' is not supported; use http:// or https://"]
        );
        assert_eq!(
            oauth(json!({"extra_params": ["resource=api", "no-equals-sign"]})),
            ["auth.extra_params[1]: expected \"name=value\""]
        );
    }

    #[test]
    fn never_echoes_a_secret_value() {
        let p = problems(json!({"url": "http://h", "auth": {"type": "bearer", "token": 12345}}));
        assert!(p.iter().all(|m| !m.contains("12345")), "{p:?}");
        let p = problems(json!({"url": "http://h", "headers": ["Bad Header: s3cr3t-value"]}));
        assert!(
            p[0].contains("Bad Header") && !p[0].contains("s3cr3t"),
            "{p:?}"
        );
    }
}
