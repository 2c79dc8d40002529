//! The plugin configuration: parsed and validated once in `on_configure`, with an error
//! naming the field for anything wrong, so requests never see a half-valid config.

use crate::rules::{self, Rule, RuleSet, Target};
use edge_proxy_wasm::Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Block,
    Monitor,
}

pub struct Config {
    pub mode: Mode,
    pub block_status: u32,
    pub block_body: String,
    pub block_content_type: String,
    /// Upper-case methods; empty means every method is allowed.
    pub allowed_methods: Vec<String>,
    pub max_header_count: usize,
    pub max_header_size: usize,
    pub max_headers_total: usize,
    pub rules: Vec<Rule>,
    /// `rules` compiled for matching
    pub rule_set: RuleSet,
    pub inspect_body: bool,
    pub max_body_inspect_bytes: usize,
    /// Lower-case header names whose values are not inspected (e.g. cookies, tokens).
    pub ignore_headers: Vec<String>,
    /// When set, the ids of matched rules go upstream in this request header (monitor).
    pub tag_header: Option<String>,
}

const KNOWN_FIELDS: &[&str] = &[
    "mode", "block_status", "block_body", "block_content_type", "allowed_methods",
    "max_header_count", "max_header_size", "max_headers_total", "rules", "targets",
    "custom_rules", "inspect_body", "max_body_inspect_bytes", "ignore_headers", "tag_header",
];

type Res<T> = Result<T, String>;

fn field_err<T>(field: &str, message: &str) -> Res<T> {
    Err(format!("config field '{}': {}", field, message))
}

fn uint(conf: &Json, field: &str, default: u64, min: u64, max: u64) -> Res<u64> {
    match conf.get(field) {
        None => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if n >= min && n <= max => Ok(n),
            _ => field_err(field, &format!("expected an integer from {} to {}", min, max)),
        },
    }
}

fn string_list(conf: &Json, field: &str) -> Res<Option<Vec<String>>> {
    match conf.get(field) {
        None => Ok(None),
        Some(v) => {
            let items = match v.as_array() {
                Some(items) => items,
                None => return field_err(field, "expected a list of strings"),
            };
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => return field_err(&format!("{}[{}]", field, i), "expected a string"),
                }
            }
            Ok(Some(out))
        }
    }
}

fn targets(list: Option<Vec<String>>, field: &str) -> Res<Vec<Target>> {
    match list {
        None => Ok(vec![Target::Path, Target::Query, Target::Header, Target::Body]),
        Some(names) => {
            let mut out = Vec::new();
            for (i, n) in names.iter().enumerate() {
                match Target::parse(n) {
                    Some(t) => out.push(t),
                    None => {
                        return field_err(
                            &format!("{}[{}]", field, i),
                            "expected one of path, query, headers, body",
                        )
                    }
                }
            }
            Ok(out)
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Config({:?}, {} rules)", self.mode, self.rules.len())
    }
}

impl Config {
    pub fn parse(raw: &Json) -> Res<Config> {
        let empty = Json::Object(Vec::new());
        let conf = if raw.is_null() { &empty } else { raw };
        let members = match conf.as_object() {
            Some(m) => m,
            None => return Err("configuration must be a JSON object".to_string()),
        };
        for (k, _) in members {
            if !KNOWN_FIELDS.contains(&k.as_str()) {
                return field_err(k, "unknown field");
            }
        }
        let mode = match conf.get("mode").map(|v| v.as_str()) {
            None | Some(Some("block")) => Mode::Block,
            Some(Some("monitor")) => Mode::Monitor,
            _ => return field_err("mode", "expected \"block\" or \"monitor\""),
        };
        let text = |field: &str, default: &str| -> Res<String> {
            match conf.get(field) {
                None => Ok(default.to_string()),
                Some(v) => match v.as_str() {
                    Some(s) => Ok(s.to_string()),
                    None => field_err(field, "expected a string"),
                },
            }
        };
        let allowed_methods = string_list(conf, "allowed_methods")?
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        // the default rule targets; body only counts when inspect_body is on
        let default_targets = targets(string_list(conf, "targets")?, "targets")?;
        let mut rule_list = Vec::new();
        let rule_ids = string_list(conf, "rules")?
            .unwrap_or_else(|| rules::RULE_SETS.iter().map(|s| s.to_string()).collect());
        for (i, id) in rule_ids.iter().enumerate() {
            match rules::builtin(id, default_targets.clone()) {
                Some(r) => rule_list.push(r),
                None => {
                    return field_err(
                        &format!("rules[{}]", i),
                        "expected one of path_traversal, sql_injection, xss",
                    )
                }
            }
        }
        if let Some(custom) = conf.get("custom_rules") {
            let items = match custom.as_array() {
                Some(items) => items,
                None => return field_err("custom_rules", "expected a list of objects"),
            };
            for (i, item) in items.iter().enumerate() {
                let at = format!("custom_rules[{}]", i);
                let id = match item.get("id").and_then(|v| v.as_str()) {
                    Some(s) if !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') => s,
                    _ => return field_err(&format!("{}.id", at), "expected a name of letters, digits, '_' or '-'"),
                };
                let sigs = match string_list(item, "signatures") {
                    Ok(Some(s)) if !s.is_empty() && s.iter().all(|x| !x.is_empty()) => s,
                    Ok(_) => return field_err(&format!("{}.signatures", at), "expected a non-empty list of non-empty strings"),
                    Err(e) => return Err(format!("{} (in {})", e, at)),
                };
                let t = targets(string_list(item, "targets").map_err(|e| format!("{} (in {})", e, at))?, &format!("{}.targets", at))?;
                rule_list.push(Rule {
                    id: id.to_string(),
                    // custom signatures are matched against the same normalised text
                    signatures: sigs.iter().map(|s| rules::normalise(s.as_bytes(), false)).collect(),
                    event_handlers: false,
                    targets: t,
                });
            }
        }
        let tag = text("tag_header", "")?.to_ascii_lowercase();
        let inspect_body = match conf.get("inspect_body") {
            None => false,
            Some(v) => match v.as_bool() {
                Some(b) => b,
                None => return field_err("inspect_body", "expected true or false"),
            },
        };
        if rule_list.len() > crate::matcher::MAX_RULES {
            return field_err("custom_rules", "too many rules (at most 64 with the built-in ones)");
        }
        let rule_set = RuleSet::build(&rule_list).map_err(|e| format!("config field 'custom_rules': {}", e))?;
        Ok(Config {
            mode,
            block_status: uint(conf, "block_status", 403, 200, 599)? as u32,
            block_body: text("block_body", "request blocked\n")?,
            block_content_type: text("block_content_type", "text/plain; charset=utf-8")?,
            allowed_methods,
            max_header_count: uint(conf, "max_header_count", 100, 1, 10_000)? as usize,
            max_header_size: uint(conf, "max_header_size", 8192, 16, 1 << 20)? as usize,
            max_headers_total: uint(conf, "max_headers_total", 65536, 64, 1 << 24)? as usize,
            rules: rule_list,
            rule_set,
            inspect_body,
            max_body_inspect_bytes: uint(conf, "max_body_inspect_bytes", 65536, 1, 16 << 20)? as usize,
            ignore_headers: string_list(conf, "ignore_headers")?
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            tag_header: if tag.is_empty() { None } else { Some(tag) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Res<Config> {
        Config::parse(&Json::parse(s.as_bytes()).unwrap())
    }

    #[test]
    fn defaults() {
        let c = parse("{}").unwrap();
        assert_eq!(c.mode, Mode::Block);
        assert_eq!(c.block_status, 403);
        assert_eq!(c.rules.len(), 3);
        assert!(!c.inspect_body);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(parse(r#"{"mode":"x"}"#).unwrap_err(), "config field 'mode': expected \"block\" or \"monitor\"");
        assert!(parse(r#"{"block_status":99}"#).unwrap_err().contains("'block_status'"));
        assert!(parse(r#"{"rules":["nope"]}"#).unwrap_err().contains("'rules[0]'"));
        assert!(parse(r#"{"custom_rules":[{"id":"a","signatures":[]}]}"#).unwrap_err().contains("custom_rules[0].signatures"));
        assert!(parse(r#"{"bogus":1}"#).unwrap_err().contains("'bogus': unknown field"));
        assert!(parse("[1]").is_err());
    }
}
