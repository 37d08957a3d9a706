//! Scripted answers: which status, headers, body, delay or connection fault
//! the receiver plays back for each request.
//!
//! Everything here deserializes from JSON so the CLI (`--script file.json`)
//! and the in-process tests share one vocabulary. Missing fields take the
//! defaults of a plain `200` with an empty body, so a script only spells out
//! what is unusual.

use serde::Deserialize;

/// One scripted answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reply {
    pub status: u16,
    /// Sent in this order; a name may repeat.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Answer with this many bytes of `x` instead of `body`, so tests can
    /// exercise response-size limits without building the body themselves.
    pub body_bytes: Option<usize>,
    /// Applies to this request only; other connections are answered meanwhile.
    pub delay_ms: u64,
    pub close: Option<Close>,
}

impl Default for Reply {
    fn default() -> Self {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: String::new(),
            body_bytes: None,
            delay_ms: 0,
            close: None,
        }
    }
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<String>) -> Reply {
        self.body = body.into();
        self
    }

    pub fn with_body_bytes(mut self, len: usize) -> Reply {
        self.body_bytes = Some(len);
        self
    }

    pub fn with_delay_ms(mut self, delay_ms: u64) -> Reply {
        self.delay_ms = delay_ms;
        self
    }

    pub fn closing(mut self, close: Close) -> Reply {
        self.close = Some(close);
        self
    }
}

/// Connection faults a real endpoint (or a proxy in front of it) produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Close {
    /// The request is read in full, then the connection is dropped with no
    /// response at all — the case where the sender cannot know whether the
    /// record was delivered.
    #[serde(alias = "BeforeResponse")]
    BeforeResponse,
    /// The response is sent with `Connection: close` and the connection is
    /// closed, so the sender must not reuse it.
    #[serde(alias = "AfterResponse")]
    AfterResponse,
    /// The status, the headers and half the body are sent, the body's whole length having been
    /// declared, then the connection is dropped: the answer breaks while the sender reads it.
    #[serde(alias = "MidBody")]
    MidBody,
}

/// A reply that applies only to matching requests, optionally a limited
/// number of times (so "fail twice, then succeed" needs no state in the test).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rule {
    /// Substring of the (decoded) body.
    pub body_contains: Option<String>,
    /// Substring of the raw path plus query.
    pub path_contains: Option<String>,
    /// Uses left; `None` is unlimited.
    pub times: Option<u32>,
    pub reply: Reply,
}

impl Rule {
    pub fn any(reply: Reply) -> Rule {
        Rule {
            reply,
            ..Rule::default()
        }
    }

    pub fn when_body_contains(needle: impl Into<String>, reply: Reply) -> Rule {
        Rule {
            body_contains: Some(needle.into()),
            ..Rule::any(reply)
        }
    }

    pub fn when_path_contains(needle: impl Into<String>, reply: Reply) -> Rule {
        Rule {
            path_contains: Some(needle.into()),
            ..Rule::any(reply)
        }
    }

    pub fn times(mut self, times: u32) -> Rule {
        self.times = Some(times);
        self
    }

    fn matches(&self, path: &str, body: &str) -> bool {
        self.times != Some(0)
            && self
                .body_contains
                .as_deref()
                .is_none_or(|n| body.contains(n))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|n| path.contains(n))
    }
}

/// Rules are tried in order; the first matching rule with uses left answers,
/// otherwise `default` does. `Script::default()` answers `200` forever.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Script {
    pub rules: Vec<Rule>,
    pub default: Reply,
}

impl Script {
    /// The n-th request gets the n-th reply, then `200` forever.
    pub fn sequence(replies: Vec<Reply>) -> Script {
        Script {
            rules: replies.into_iter().map(|r| Rule::any(r).times(1)).collect(),
            default: Reply::default(),
        }
    }

    /// Picks the reply for one request and uses up one of the rule's `times`.
    pub(crate) fn answer(&mut self, path: &str, body: &str) -> Reply {
        match self.rules.iter_mut().find(|r| r.matches(path, body)) {
            Some(rule) => {
                if let Some(left) = rule.times.as_mut() {
                    *left -= 1;
                }
                rule.reply.clone()
            }
            None => self.default.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_with_missing_fields_takes_defaults() {
        let script: Script = serde_json::from_str(
            r#"{"rules":[{"body_contains":"\"_valmi_row_num\":3","times":2,
                "reply":{"status":503,"headers":[["Retry-After","1"]]}}],
                "default":{"status":200}}"#,
        )
        .unwrap();
        let expected = Script {
            rules: vec![Rule::when_body_contains(
                "\"_valmi_row_num\":3",
                Reply::status(503).with_header("Retry-After", "1"),
            )
            .times(2)],
            default: Reply::default(),
        };
        assert_eq!(script, expected);
        assert_eq!(
            serde_json::from_str::<Script>("{}").unwrap(),
            Script::default()
        );
    }

    #[test]
    fn close_accepts_snake_and_pascal_case() {
        for text in [r#""before_response""#, r#""BeforeResponse""#] {
            assert_eq!(
                serde_json::from_str::<Close>(text).unwrap(),
                Close::BeforeResponse
            );
        }
    }

    #[test]
    fn unknown_fields_are_rejected_so_typos_do_not_pass_silently() {
        assert!(serde_json::from_str::<Script>(r#"{"rules":[{"time":2}]}"#).is_err());
    }

    #[test]
    fn limited_rule_runs_out_then_default_answers() {
        let mut script = Script {
            rules: vec![Rule::when_body_contains("k1", Reply::status(503)).times(2)],
            default: Reply::status(204),
        };
        let statuses: Vec<u16> = ["k1", "k2", "k1", "k1"]
            .iter()
            .map(|body| script.answer("/", body).status)
            .collect();
        assert_eq!(statuses, [503, 204, 503, 204]);
    }

    #[test]
    fn sequence_then_ok_forever() {
        let mut script = Script::sequence(vec![Reply::status(503), Reply::status(429)]);
        let statuses: Vec<u16> = (0..4).map(|_| script.answer("/", "").status).collect();
        assert_eq!(statuses, [503, 429, 200, 200]);
    }

    #[test]
    fn path_rule_matches_query() {
        let mut script = Script {
            rules: vec![Rule::when_path_contains("?fail=1", Reply::status(500))],
            ..Script::default()
        };
        assert_eq!(script.answer("/hook?fail=1", "").status, 500);
        assert_eq!(script.answer("/hook", "").status, 200);
    }
}
