//! `--pipeline` / `[[pipeline]]`: the wrapping layers in an order the user chooses (outermost
//! first), each kind as often as wanted (a rate limit per client address, then one per API
//! key), instead of the middleware settings' fixed order. Owns the layer syntax and its
//! check; python/ferrogate/_pipeline.py builds the layers from the same strings.
//!
//! One layer is `KIND` or `KIND:ITEM,ITEM...` with ITEM `name=value` (a list option repeats
//! its name) or, for `static`, `/prefix=directory`. A `[[pipeline]]` table is the same layer
//! with `layer = "KIND"` and the items as keys (lists as arrays).

/// The layer kinds, and the options each takes (a `static` layer also takes `/prefix` keys).
const KINDS: [(&str, &[&str]); 5] = [
    ("request_id", &[]),
    ("ip_filter", &["allow", "deny", "allow_file", "deny_file"]),
    (
        "rate_limit",
        &[
            "rate",
            "burst",
            "key",
            "slots",
            "store",
            "fail",
            "redis_timeout",
        ],
    ),
    (
        "static",
        &[
            "max_age",
            "index",
            "follow_symlinks",
            "allow_dotfiles",
            "precompressed",
            "immutable_hashed",
        ],
    ),
    ("compress", &["min_size", "level", "encodings"]),
];

/// Checks one `--pipeline` value: a known kind, known options, and what the kind needs
/// (a rate, a directory, a list). Values are checked when the layer is built.
pub fn parse_layer(text: &str) -> Result<String, String> {
    let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
    let kind = kind.trim();
    let Some((_, options)) = KINDS.iter().find(|(name, _)| *name == kind) else {
        return Err(format!(
            "{kind:?} is not a layer; the layers are {}",
            kind_names()
        ));
    };
    let items: Vec<&str> = rest
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    let mut directories = 0;
    for item in &items {
        let name = match item.split_once('=') {
            Some((name, value)) if !value.is_empty() => name,
            _ => return Err(format!("{kind}: {item:?} is not NAME=VALUE")),
        };
        if kind == "static" && name.starts_with('/') {
            directories += 1;
        } else if !options.contains(&name) {
            return Err(format!(
                "{kind}: {name:?} is not one of its options ({})",
                option_names(kind, options)
            ));
        }
    }
    let has = |option: &str| {
        items
            .iter()
            .any(|item| item.starts_with(&format!("{option}=")))
    };
    match kind {
        "rate_limit" if !has("rate") => Err("rate_limit needs rate=RATE (100/s, 10/min)".into()),
        "static" if directories == 0 => Err("static needs /prefix=directory".into()),
        "ip_filter" if !options.iter().any(|option| has(option)) => {
            Err("ip_filter needs allow=, deny=, allow_file= or deny_file=".into())
        }
        _ => Ok(text.to_string()),
    }
}

/// A `[[pipeline]]` table of a config file as the `--pipeline` value it stands for.
pub fn layer_from_table(table: &toml::Table) -> Result<String, String> {
    let kind = match table.get("layer") {
        Some(toml::Value::String(kind)) => kind,
        Some(other) => return Err(format!("layer = {other} is not a layer name")),
        None => {
            return Err(format!(
                "a [[pipeline]] table needs layer = one of {}",
                kind_names()
            ))
        }
    };
    let mut items = Vec::new();
    for (key, value) in table.iter().filter(|(key, _)| *key != "layer") {
        match value {
            toml::Value::Array(values) => {
                for value in values {
                    items.push(format!("{key}={}", scalar(value)?));
                }
            }
            value => items.push(format!("{key}={}", scalar(value)?)),
        }
    }
    let spec = match items.is_empty() {
        true => kind.clone(),
        false => format!("{kind}:{}", items.join(",")),
    };
    parse_layer(&spec)
}

fn scalar(value: &toml::Value) -> Result<String, String> {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => return Err(format!("{other} is not a string, number or boolean")),
    };
    match text.contains(',') {
        // A comma would split the item: lists are arrays here.
        true => Err(format!(
            "{text:?}: write a list as an array, not with commas"
        )),
        false => Ok(text),
    }
}

fn kind_names() -> String {
    KINDS.map(|(name, _)| name).join(", ")
}

fn option_names(kind: &str, options: &[&str]) -> String {
    let mut names: Vec<&str> = options.to_vec();
    if kind == "static" {
        names.insert(0, "/prefix");
    }
    match names.is_empty() {
        true => "it takes none".to_string(),
        false => names.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_need_a_known_kind_known_options_and_what_the_kind_needs() {
        for good in [
            "request_id",
            "ip_filter:allow=10.0.0.0/8,allow=::1,deny=10.6.6.0/24",
            "rate_limit:rate=100/s,burst=200,key=header:X-Api-Key",
            "static:/static=./public,max_age=60",
            "compress:level=5",
        ] {
            assert_eq!(parse_layer(good).as_deref(), Ok(good));
        }
        for (bad, says) in [
            ("ratelimit:rate=1/s", "\"ratelimit\" is not a layer"),
            ("rate_limit:burst=3", "needs rate="),
            (
                "rate_limit:rate=1/s,brust=3",
                "\"brust\" is not one of its options",
            ),
            ("static:max_age=3", "needs /prefix=directory"),
            ("ip_filter", "ip_filter needs"),
            ("request_id:x=1", "it takes none"),
            ("compress:level", "is not NAME=VALUE"),
        ] {
            let error = parse_layer(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn a_pipeline_table_becomes_the_flag_value() {
        let table: toml::Table = toml::from_str(
            "layer = \"ip_filter\"\nallow = [\"10.0.0.0/8\", \"::1\"]\ndeny = \"10.6.6.0/24\"\n",
        )
        .unwrap();
        assert_eq!(
            layer_from_table(&table).unwrap(),
            "ip_filter:allow=10.0.0.0/8,allow=::1,deny=10.6.6.0/24"
        );
        let table: toml::Table = toml::from_str("layer = \"static\"\n\"/s\" = \"pub\"\n").unwrap();
        assert_eq!(layer_from_table(&table).unwrap(), "static:/s=pub");
        let table: toml::Table =
            toml::from_str("allow = \"a,b\"\nlayer = \"ip_filter\"\n").unwrap();
        assert!(layer_from_table(&table)
            .unwrap_err()
            .contains("as an array"));
        let table: toml::Table = toml::from_str("rate = \"1/s\"\n").unwrap();
        assert!(layer_from_table(&table)
            .unwrap_err()
            .contains("needs layer ="));
    }
}
