//! Where a log goes: a standard stream or a file opened for append.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

pub enum Sink {
    Stdout,
    Stderr,
    File { file: File, path: PathBuf },
}

impl Sink {
    /// `-` means the stream the log conventionally uses (`dash`); anything else is a file path.
    pub fn open(target: &str, dash: Sink) -> io::Result<Sink> {
        if target == "-" {
            return Ok(dash);
        }
        let path = PathBuf::from(target);
        Ok(Sink::File {
            file: open_for_append(&path)?,
            path,
        })
    }

    /// Opens the file again by its path (after logrotate renamed it: SIGUSR1); a stream
    /// stays as it is. On failure the old file is kept, so no line is lost.
    pub fn reopen(&mut self) -> io::Result<()> {
        if let Sink::File { file, path } = self {
            *file = open_for_append(path)?;
        }
        Ok(())
    }

    /// Writes one whole line in one `write` call, so lines from several processes never interleave.
    pub fn write_line(&mut self, line: &[u8]) {
        let result = match self {
            Sink::Stdout => io::stdout().lock().write_all(line),
            Sink::Stderr => io::stderr().lock().write_all(line),
            Sink::File { file, .. } => file.write_all(line),
        };
        // A log that cannot be written has nowhere to report to; serving goes on.
        let _ = result;
    }
}

fn open_for_append(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}
