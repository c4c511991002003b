//! Where settings come from, in rising precedence: defaults, a config file, `FERROGATE_*`
//! environment variables, the command line (or `ferrogate.run()` keywords, turned into it).
//! Everything here is derived from the clap declarations in `settings.rs`: the environment
//! names, the config-file keys, their types and validation, gunicorn's aliases.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

use super::file::{self, FileEntry, FileError, FileFormat, FileValue};
use super::gunicorn::{self, GunicornName};
use super::Settings;

/// The `ferrogate` command: the settings' clap declarations, each with its environment
/// variable (`FERROGATE_` and the setting's name) and gunicorn's spellings as aliases.
pub fn command() -> Command {
    Settings::command().mut_args(|arg| {
        if is_builtin(&arg) {
            return arg;
        }
        let env = format!("FERROGATE_{}", arg.get_id().as_str().to_ascii_uppercase());
        arg.env(env)
    })
}

fn is_builtin(arg: &Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

/// Where one setting's effective value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env(String),
    CommandLine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{} line {line}", path.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::CommandLine => f.write_str("command line"),
        }
    }
}

/// One setting as it ends up: its values as text (none when unset) and their source.
#[derive(Debug, Clone)]
pub struct Effective {
    pub name: String,
    pub values: Vec<String>,
    pub is_list: bool,
    pub is_switch: bool,
    /// Not offered (`--daemon`, declared only to refuse it with a reason).
    pub hidden: bool,
    pub source: Source,
}

/// The settings and, for `--check-config`, where each came from.
pub struct Loaded {
    pub settings: Settings,
    pub effective: Vec<Effective>,
    pub config_file: Option<PathBuf>,
}

/// Why the settings could not be loaded; every variant names the setting and its source.
#[derive(Debug)]
pub enum LoadError {
    /// From clap: the command line or an environment variable (`--help` and `--version`
    /// come this way too).
    Usage(clap::Error),
    File(FileError),
    /// A config-file entry is wrong; the message names the key, the file and line.
    Entry(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Usage(error) => error.fmt(f),
            LoadError::File(error) => error.fmt(f),
            LoadError::Entry(message) => f.write_str(message),
        }
    }
}

/// The settings used once, when the master starts (binding, the process settings, what is
/// imported before forking): a SIGHUP that finds them changed says they wait for a restart.
pub const RESTART_ONLY: &[&str] = &[
    "bind",
    "metrics_bind",
    "control_socket",
    "backlog",
    "unix_socket_perms",
    "chdir",
    "pythonpath",
    "preload",
    // The master applies the ini's logging and keeps global_conf when it starts; a SIGHUP
    // still loads the ini again in the new workers.
    "paste",
    "paste_global",
    "pid",
    "user",
    "group",
    "umask",
];

impl Loaded {
    /// The names of the settings whose value differs in `newer`, in the table's order.
    pub fn changed_in<'a>(&self, newer: &'a Loaded) -> Vec<&'a str> {
        newer
            .effective
            .iter()
            .filter(|setting| {
                let before = self.effective.iter().find(|old| old.name == setting.name);
                before.is_none_or(|old| old.values != setting.values)
            })
            .map(|setting| setting.name.as_str())
            .collect()
    }

    /// Whether `name` has its default value: given nowhere.
    pub fn is_default(&self, name: &str) -> bool {
        self.effective
            .iter()
            .any(|setting| setting.name == name && setting.source == Source::Default)
    }
}

/// Reads a Python config file into entries (the Python layer executes it).
pub type ReadPythonConfig<'a> = &'a mut dyn FnMut(&Path) -> Result<Vec<FileEntry>, String>;

/// Loads the settings from `argv`, the environment and the config file that applies (`-c`,
/// else `ferrogate.toml` or `pyproject.toml` in `dir`).
pub fn load(
    argv: &[String],
    dir: &Path,
    read_python: ReadPythonConfig<'_>,
) -> Result<Loaded, LoadError> {
    let mut cmd = command();
    cmd.build();
    let first = cmd
        .clone()
        .try_get_matches_from(argv)
        .map_err(LoadError::Usage)?;
    let given = first.get_one::<PathBuf>("config").map(PathBuf::as_path);
    let found = file::find(given, dir).map_err(LoadError::File)?;
    let mut from_file = FromFile::default();
    if let Some((path, format)) = &found {
        let entries = match format {
            FileFormat::Python => read_python(path).map_err(LoadError::Entry)?,
            _ => file::read_toml(path, *format).map_err(LoadError::File)?,
        };
        from_file = FromFile::build(&cmd, &first, path, &entries)?;
    }
    let mut full: Vec<String> = argv.iter().take(1).cloned().collect();
    full.extend(from_file.flags.iter().cloned());
    full.extend(argv.iter().skip(1).cloned());
    full.extend(from_file.positional.iter().cloned());
    let matches = cmd
        .clone()
        .try_get_matches_from(&full)
        .map_err(LoadError::Usage)?;
    let settings = Settings::from_arg_matches(&matches).map_err(LoadError::Usage)?;
    let effective = effective(&cmd, &matches, &from_file);
    Ok(Loaded {
        settings,
        effective,
        config_file: found.map(|(path, _)| path),
    })
}

/// What a config file contributes: flags in front of the command line (only for settings
/// that neither the command line nor the environment set), and where each came from.
#[derive(Default)]
struct FromFile {
    flags: Vec<String>,
    positional: Vec<String>,
    places: HashMap<String, Source>,
}

impl FromFile {
    fn build(
        cmd: &Command,
        outer: &ArgMatches,
        path: &Path,
        entries: &[FileEntry],
    ) -> Result<FromFile, LoadError> {
        let mut from_file = FromFile::default();
        let mut seen: HashMap<String, (String, usize)> = HashMap::new();
        for entry in entries {
            let place = format!("{} line {}", path.display(), entry.line);
            let Some(id) = resolve_key(cmd, &entry.key, &place)? else {
                continue;
            };
            if matches!(id.as_str(), "config" | "check_config") {
                return Err(LoadError::Entry(format!(
                    "`{}` in {place} has no effect inside a config file; give it on the \
                     command line",
                    entry.key
                )));
            }
            if let Some((other, line)) = seen.insert(id.clone(), (entry.key.clone(), entry.line)) {
                return Err(LoadError::Entry(format!(
                    "`{other}` (line {line}) and `{}` (line {}) in {} both set `{id}`; keep one",
                    entry.key,
                    entry.line,
                    path.display()
                )));
            }
            let arg = find_arg(cmd, &id).expect("resolve_key returns known settings");
            let values = values_for(cmd, arg, entry, &place)?;
            let set_outside = matches!(
                outer.value_source(&id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            if set_outside {
                continue;
            }
            from_file.places.insert(
                id.clone(),
                Source::File {
                    path: path.to_path_buf(),
                    line: entry.line,
                },
            );
            match arg.get_long() {
                None => from_file.positional.extend(values),
                Some(long) if is_switch(arg) => {
                    if values.iter().any(|v| v == "true") {
                        from_file.flags.push(format!("--{long}"));
                    }
                }
                Some(long) => {
                    for value in values {
                        from_file.flags.push(format!("--{long}={value}"));
                    }
                }
            }
        }
        Ok(from_file)
    }
}

fn find_arg<'a>(cmd: &'a Command, id: &str) -> Option<&'a Arg> {
    cmd.get_arguments()
        .find(|arg| arg.get_id().as_str() == id && !is_builtin(arg))
}

fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// The setting a config-file key names (ours, with `-` or `_`, or gunicorn's name for it);
/// `None` for a gunicorn setting that is accepted and ignored (logged once, with why).
fn resolve_key(cmd: &Command, key: &str, place: &str) -> Result<Option<String>, LoadError> {
    let id = key.replace('-', "_");
    if find_arg(cmd, &id).is_some() {
        return Ok(Some(id));
    }
    match gunicorn::lookup(&id) {
        Some(GunicornName::Ours(ours)) => return Ok(Some(ours.to_string())),
        Some(GunicornName::Ignored(why)) => {
            log::info!("`{key}` in {place} is ignored: {why}");
            return Ok(None);
        }
        Some(GunicornName::Unsupported(why)) => {
            return Err(LoadError::Entry(format!(
                "`{key}` in {place} is a gunicorn setting ferrogate does not take: {why}"
            )))
        }
        None => {}
    }
    let known = cmd
        .get_arguments()
        .filter(|arg| !is_builtin(arg))
        .map(|arg| arg.get_id().as_str().to_string())
        .chain(gunicorn::names().map(str::to_string));
    let hint = closest(&id, known)
        .map(|name| format!("; did you mean `{name}`?"))
        .unwrap_or_default();
    Err(LoadError::Entry(format!(
        "unknown setting `{key}` in {place}{hint}"
    )))
}

/// The known name most like `name`, if any is close.
pub fn closest(name: &str, known: impl Iterator<Item = String>) -> Option<String> {
    known
        .map(|candidate| (strsim::jaro_winkler(name, &candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// An entry's value as command-line values, each checked by the setting's own parser.
fn values_for(
    cmd: &Command,
    arg: &Arg,
    entry: &FileEntry,
    place: &str,
) -> Result<Vec<String>, LoadError> {
    let name = arg.get_id().as_str();
    let wrong_type = |expected: &str| {
        LoadError::Entry(format!(
            "`{}` in {place} must be {expected}, not {}",
            entry.key,
            entry.value.kind()
        ))
    };
    if is_switch(arg) {
        return match entry.value {
            FileValue::Bool(b) => Ok(vec![b.to_string()]),
            _ => Err(wrong_type("true or false")),
        };
    }
    let items: Vec<&FileValue> = match &entry.value {
        FileValue::List(items) if is_list(arg) => items.iter().collect(),
        FileValue::List(_) => return Err(wrong_type(&expected(arg))),
        single => vec![single],
    };
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        let text = match item {
            FileValue::Int(i) => i.to_string(),
            FileValue::Float(f) => f.to_string(),
            FileValue::Text(s) => s.clone(),
            // The item itself says what is wrong with it (a `[[forward]]` table's message).
            FileValue::Other(what) => {
                return Err(LoadError::Entry(format!(
                    "`{}` in {place} must be {}, not {what}",
                    entry.key,
                    expected(arg)
                )))
            }
            _ => return Err(wrong_type(&expected(arg))),
        };
        if let Err(error) = check_value(cmd, arg, &text) {
            let reason = std::error::Error::source(&error)
                .map(|source| source.to_string())
                .unwrap_or_else(|| first_line(&error.to_string()));
            return Err(LoadError::Entry(format!(
                "bad value {text:?} for `{name}` in {place}: {reason} (expected {})",
                expected(arg)
            )));
        }
        values.push(text);
    }
    Ok(values)
}

/// Runs the setting's own parser on `text` (clap keeps parsers private, so through a parse
/// of just that one value).
fn check_value(cmd: &Command, arg: &Arg, text: &str) -> Result<(), clap::Error> {
    let value = match arg.get_long() {
        Some(long) => format!("--{long}={text}"),
        None => text.to_string(),
    };
    cmd.clone()
        .try_get_matches_from(["ferrogate".to_string(), value])
        .map(|_| ())
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    line.trim_start_matches("error: ").to_string()
}

/// What a setting takes, in words, from its declaration.
fn expected(arg: &Arg) -> String {
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|value| value.get_name().to_string())
        .collect();
    let unit = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.as_str().to_ascii_lowercase())
        .unwrap_or_default();
    // The value names say the unit (settings.rs gives every number one).
    let one = if !possible.is_empty() {
        format!("one of {}", possible.join(", "))
    } else {
        match unit.as_str() {
            "seconds" => "a number of seconds".into(),
            "n" => "a whole number".into(),
            "bytes" => "a number of bytes".into(),
            "mib" => "a number of MiB".into(),
            "file" | "dir" => "a path (a string)".into(),
            "" => "a string".into(),
            other => format!("a string ({other})"),
        }
    };
    match is_list(arg) {
        true => format!("{one}, or a list of them"),
        false => one,
    }
}

fn effective(cmd: &Command, matches: &ArgMatches, from_file: &FromFile) -> Vec<Effective> {
    cmd.get_arguments()
        .filter(|arg| !is_builtin(arg))
        .map(|arg| {
            let id = arg.get_id().as_str();
            let values: Vec<String> = matches
                .get_raw(id)
                .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            let source = match (matches.value_source(id), from_file.places.get(id)) {
                (Some(ValueSource::CommandLine), Some(place)) => place.clone(),
                (_, Some(place)) if is_switch(arg) => place.clone(),
                (Some(ValueSource::CommandLine), None) => Source::CommandLine,
                (Some(ValueSource::EnvVariable), _) => Source::Env(
                    arg.get_env()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                _ => Source::Default,
            };
            Effective {
                name: id.to_string(),
                values,
                is_list: is_list(arg),
                is_switch: is_switch(arg),
                hidden: arg.is_hide_set(),
                source,
            }
        })
        .collect()
}

/// `--check-config`'s report: every setting, as a config file would spell it, and where its
/// value came from.
pub fn report(loaded: &Loaded) -> String {
    let mut out = String::new();
    match &loaded.config_file {
        Some(path) => out.push_str(&format!("# config file: {}\n", path.display())),
        None => out.push_str("# no config file\n"),
    }
    for setting in &loaded.effective {
        if setting.name == "check_config" || setting.hidden {
            continue;
        }
        let value = if setting.values.is_empty() && !setting.is_switch {
            "(not set)".to_string()
        } else if setting.is_switch {
            setting.values.first().map_or("false".into(), |v| v.clone())
        } else if setting.is_list {
            let items: Vec<String> = setting.values.iter().map(|v| toml_text(v)).collect();
            format!("[{}]", items.join(", "))
        } else {
            toml_text(&setting.values[0])
        };
        // A secret is said to be set, never printed.
        let value = match setting.name == "keyfile_password" && !setting.values.is_empty() {
            true => "\"(hidden)\"".to_string(),
            false => value,
        };
        let line = format!("{} = {value}", setting.name);
        out.push_str(&format!("{line:<48} # {}\n", setting.source));
    }
    out
}

fn toml_text(value: &str) -> String {
    if value.parse::<f64>().is_ok() && !value.is_empty() {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}
