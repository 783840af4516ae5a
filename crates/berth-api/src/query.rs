//! Query strings as Docker's handlers read them: repeated keys
//! (`names=a&names=b`), Docker's booleans (`1`, `true`, `True`; `0`,
//! `false`, `no`, `none` and empty are false), integers with a 400 when
//! they are not, and the `filters` JSON in both of its forms:
//! `{"key":["v1","v2"]}` and the older `{"key":{"v1":true}}`.
//!
//! Parsing only: nothing here knows what a filter means.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// The decoded `key=value` pairs of a request's query string.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

/// Docker's `filters`: each key with its values, in order given.
pub type Filters = BTreeMap<String, Vec<String>>;

impl Query {
    /// Decodes `a=1&b=x%20y` (`+` is a space, as in forms).
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Query { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's boolean: absent is `default`; `""`, `0`, `no`, `false`,
    /// `none` (any case) are false; anything else is true.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(v) => !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }

    /// Docker's boolean, false when absent.
    pub fn bool(&self, key: &str) -> bool {
        self.bool_or(key, false)
    }

    /// An integer parameter; absent or empty is None; anything else that is
    /// not an integer is a 400 naming the parameter.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))),
        }
    }

    /// A parameter that must be present and non-empty.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::bad_request(format!("{key} cannot be empty"))),
        }
    }

    /// The `filters` parameter (see [`parse_filters`]).
    pub fn filters(&self) -> Result<Filters, ApiError> {
        parse_filters(self.get("filters").unwrap_or(""))
    }
}

/// Parses Docker's `filters` JSON; empty text is no filter.
pub fn parse_filters(text: &str) -> Result<Filters, ApiError> {
    let mut out = Filters::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    let bad = |why: String| ApiError::bad_request(format!("invalid filter: {why}"));
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad(format!("expected a JSON object, got {text}")))?;
    for (key, values) in obj {
        let list = out.entry(key.clone()).or_default();
        match values {
            serde_json::Value::Array(a) => {
                for x in a {
                    let s = x
                        .as_str()
                        .ok_or_else(|| bad(format!("the values of {key:?} must be strings")))?;
                    list.push(s.to_string());
                }
            }
            serde_json::Value::Object(m) => {
                for (value, on) in m {
                    match on.as_bool() {
                        Some(true) => list.push(value.clone()),
                        Some(false) => {}
                        None => return Err(bad(format!("the values of {key:?} must map to true or false"))),
                    }
                }
            }
            _ => return Err(bad(format!("the value of {key:?} must be a list or a map"))),
        }
    }
    Ok(out)
}

/// Refuses filter keys outside `known`, in Docker's words.
pub fn only_filters(f: &Filters, known: &[&str]) -> Result<(), ApiError> {
    match f.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        None => Ok(()),
    }
}

/// `key=value` strings of the filters named in `keys` (the engine's
/// filter parsers take that form).
pub fn as_pairs(f: &Filters, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .flat_map(|k| f.get(*k).into_iter().flatten().map(move |v| format!("{k}={v}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_filter_forms_give_the_same_map() {
        let new = parse_filters(r#"{"label":["a=b","c"],"dangling":["true"]}"#).unwrap();
        let old = parse_filters(r#"{"label":{"a=b":true,"c":true,"off":false},"dangling":{"true":true}}"#).unwrap();
        assert_eq!(new, old);
        assert_eq!(new["label"], vec!["a=b", "c"]);
        assert!(parse_filters("").unwrap().is_empty());
        assert_eq!(parse_filters("[1]").unwrap_err().status, hyper::StatusCode::BAD_REQUEST);
        assert!(parse_filters(r#"{"a":[1]}"#).is_err());
        assert!(parse_filters("{not json").is_err());
    }

    #[test]
    fn docker_booleans_integers_and_repeats() {
        let q = Query::parse(Some("all=1&force=False&v=&size=yes&t=10&names=a&names=b%3Ac&bad=x1"));
        assert!(q.bool("all"));
        assert!(!q.bool("force"));
        assert!(!q.bool("v"));
        assert!(q.bool("size"));
        assert!(!q.bool("absent"));
        assert!(q.bool_or("absent", true));
        assert_eq!(q.int("t").unwrap(), Some(10));
        assert_eq!(q.int("absent").unwrap(), None);
        assert_eq!(q.int("bad").unwrap_err().status, hyper::StatusCode::BAD_REQUEST);
        assert_eq!(q.all("names"), vec!["a", "b:c"]);
    }

    #[test]
    fn unknown_filters_are_refused_by_name() {
        let f = parse_filters(r#"{"label":["x"],"colour":["red"]}"#).unwrap();
        let e = only_filters(&f, &["label"]).unwrap_err();
        assert_eq!(e.message, "invalid filter 'colour'");
        assert_eq!(as_pairs(&f, &["label"]), vec!["label=x"]);
    }
}
