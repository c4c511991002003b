//! Config files as entries (key, value, line): `ferrogate.toml`, `[tool.ferrogate]` in
//! `pyproject.toml`, or a gunicorn-style Python file (executed by the Python layer, which
//! hands its names over). Knows file formats, not which settings exist (`sources.rs` does).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// A value as a config file spells it.
#[derive(Debug, Clone, PartialEq)]
pub enum FileValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<FileValue>),
    /// Something no setting takes (a table, a date, a Python object); the text says what.
    Other(String),
}

impl FileValue {
    /// What the value is, in words, for an error message.
    pub fn kind(&self) -> String {
        match self {
            FileValue::Bool(_) => "a boolean".into(),
            FileValue::Int(_) => "an integer".into(),
            FileValue::Float(_) => "a number".into(),
            FileValue::Text(_) => "a string".into(),
            FileValue::List(_) => "a list".into(),
            FileValue::Other(what) => what.clone(),
        }
    }
}

/// One `key = value` of a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub key: String,
    pub value: FileValue,
    /// 1-based.
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Toml,
    /// Only its `[tool.ferrogate]` table is read.
    Pyproject,
    /// A gunicorn-style config: executed, and its module-level names read.
    Python,
}

/// The config file that applies: the one given (`-c`), else `ferrogate.toml` in `dir`, else
/// `pyproject.toml` in `dir` when it has a `[tool.ferrogate]` table.
pub fn find(given: Option<&Path>, dir: &Path) -> Result<Option<(PathBuf, FileFormat)>, FileError> {
    if let Some(given) = given {
        // From `dir`, not the working directory: a SIGHUP reads it again after `--chdir`.
        // Named as given while the two are the same, so messages show what the user typed.
        let from_here = std::env::current_dir().is_ok_and(|here| here == dir);
        let path = match from_here {
            true => given.to_path_buf(),
            false => dir.join(given),
        };
        if !path.is_file() {
            return Err(FileError::Missing(given.to_path_buf()));
        }
        return Ok(Some((path.clone(), format_of(&path))));
    }
    let own = dir.join("ferrogate.toml");
    if own.is_file() {
        return Ok(Some((own, FileFormat::Toml)));
    }
    let pyproject = dir.join("pyproject.toml");
    if pyproject.is_file() && read_text(&pyproject)?.contains("[tool.ferrogate") {
        return Ok(Some((pyproject, FileFormat::Pyproject)));
    }
    Ok(None)
}

fn format_of(path: &Path) -> FileFormat {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("pyproject.toml") => FileFormat::Pyproject,
        Some(name) if name.ends_with(".py") => FileFormat::Python,
        _ => FileFormat::Toml,
    }
}

fn read_text(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|error| FileError::Unreadable {
        path: path.to_path_buf(),
        error: error.to_string(),
    })
}

type SpannedTable = Vec<(Spanned<String>, Spanned<toml::Value>)>;

#[derive(Deserialize)]
struct Pyproject {
    #[serde(default)]
    tool: Tools,
}

#[derive(Deserialize, Default)]
struct Tools {
    #[serde(default, deserialize_with = "spanned_table")]
    ferrogate: SpannedTable,
}

#[derive(Deserialize)]
#[serde(transparent)]
struct OwnFile(#[serde(deserialize_with = "spanned_table")] SpannedTable);

/// A table's entries in file order, each key and value with its place in the file.
fn spanned_table<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SpannedTable, D::Error> {
    struct Entries;
    impl<'de> serde::de::Visitor<'de> for Entries {
        type Value = SpannedTable;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a table of settings")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<SpannedTable, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    deserializer.deserialize_map(Entries)
}

/// Reads a TOML config file (`ferrogate.toml`, or `pyproject.toml`'s `[tool.ferrogate]`).
pub fn read_toml(path: &Path, format: FileFormat) -> Result<Vec<FileEntry>, FileError> {
    let text = read_text(path)?;
    let parsed = match format {
        FileFormat::Pyproject => toml::from_str::<Pyproject>(&text).map(|p| p.tool.ferrogate),
        _ => toml::from_str::<OwnFile>(&text).map(|own| own.0),
    };
    let table = parsed.map_err(|error| FileError::Syntax {
        path: path.to_path_buf(),
        line: error.span().map_or(0, |span| line_of(&text, span.start)),
        message: error.message().to_string(),
    })?;
    let mut entries: Vec<FileEntry> = table
        .into_iter()
        .map(|(key, value)| {
            let line = line_of(&text, key.span().start);
            let key = key.into_inner();
            let value = match (key.as_str(), value.into_inner()) {
                // `[[forward]]`: each table is one --forward value.
                ("forward", toml::Value::Array(items)) => FileValue::List(tables(
                    items,
                    super::middleware_settings::forward_from_table,
                )),
                // `[[pipeline]]`: each table is one --pipeline value.
                ("pipeline", toml::Value::Array(items)) => {
                    FileValue::List(tables(items, super::pipeline_layers::layer_from_table))
                }
                (_, value) => from_toml(value),
            };
            FileEntry { line, key, value }
        })
        .collect();
    // The parser hands tables over in key order; messages read better in file order.
    entries.sort_by_key(|entry| entry.line);
    Ok(entries)
}

fn line_of(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// One `[[forward]]` or `[[pipeline]]` table as the flag value it stands for, which
/// `as_flag` makes (and checks).
fn table_entry(
    value: toml::Value,
    as_flag: fn(&toml::Table) -> Result<String, String>,
) -> FileValue {
    match value {
        toml::Value::Table(table) => match as_flag(&table) {
            Ok(spec) => FileValue::Text(spec),
            Err(why) => FileValue::Other(format!("a table ({why})")),
        },
        other => from_toml(other),
    }
}

fn tables(
    items: Vec<toml::Value>,
    as_flag: fn(&toml::Table) -> Result<String, String>,
) -> Vec<FileValue> {
    items
        .into_iter()
        .map(|item| table_entry(item, as_flag))
        .collect()
}

fn from_toml(value: toml::Value) -> FileValue {
    match value {
        toml::Value::Boolean(b) => FileValue::Bool(b),
        toml::Value::Integer(i) => FileValue::Int(i),
        toml::Value::Float(f) => FileValue::Float(f),
        toml::Value::String(s) => FileValue::Text(s),
        toml::Value::Array(items) => FileValue::List(items.into_iter().map(from_toml).collect()),
        toml::Value::Table(_) => FileValue::Other("a table".into()),
        toml::Value::Datetime(d) => FileValue::Other(format!("the date {d}")),
    }
}

/// A config file that cannot be read as one.
#[derive(Debug, Clone, PartialEq)]
pub enum FileError {
    Missing(PathBuf),
    Unreadable {
        path: PathBuf,
        error: String,
    },
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Missing(path) => write!(f, "config file {} does not exist", path.display()),
            FileError::Unreadable { path, error } => {
                write!(f, "cannot read the config file {}: {error}", path.display())
            }
            FileError::Syntax {
                path,
                line,
                message,
            } => write!(f, "{} line {line}: {}", path.display(), message.trim_end()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ferrogate-file-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn toml_entries_keep_their_order_and_lines() {
        let dir = temp_dir("toml");
        let path = write(
            &dir,
            "ferrogate.toml",
            "# comment\nworkers = 4\n\nbind = [\"unix:/x\", \":1\"]\ndebug = false\n",
        );
        let entries = read_toml(&path, FileFormat::Toml).unwrap();
        let keys: Vec<_> = entries.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(keys, [("workers", 2), ("bind", 4), ("debug", 5)]);
        assert_eq!(entries[0].value, FileValue::Int(4));
        assert_eq!(
            entries[1].value,
            FileValue::List(vec![
                FileValue::Text("unix:/x".into()),
                FileValue::Text(":1".into())
            ])
        );
    }

    #[test]
    fn pyproject_is_used_only_with_a_ferrogate_table() {
        let dir = temp_dir("pyproject");
        write(&dir, "pyproject.toml", "[project]\nname = \"x\"\n");
        assert_eq!(find(None, &dir).unwrap(), None);
        write(
            &dir,
            "pyproject.toml",
            "[project]\nname = \"x\"\n\n[tool.ferrogate]\nthreads = 8\n",
        );
        let (path, format) = find(None, &dir).unwrap().unwrap();
        assert_eq!(format, FileFormat::Pyproject);
        let entries = read_toml(&path, format).unwrap();
        assert_eq!((entries[0].key.as_str(), entries[0].line), ("threads", 5));
        write(&dir, "ferrogate.toml", "workers = 2\n");
        assert_eq!(find(None, &dir).unwrap().unwrap().1, FileFormat::Toml);
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let dir = temp_dir("syntax");
        let path = write(&dir, "bad.toml", "workers = 2\nthreads = = 3\n");
        let error = read_toml(&path, FileFormat::Toml).unwrap_err().to_string();
        assert!(error.contains("bad.toml line 2"), "{error}");
        let missing = find(Some(&dir.join("nope.toml")), &dir)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope.toml does not exist"), "{missing}");
    }
}
