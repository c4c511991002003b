//! Where a log goes: a standard stream or a file opened for append.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};

pub enum Sink {
    Stdout,
    Stderr,
    File(File),
}

impl Sink {
    /// `-` means the stream the log conventionally uses (`dash`); anything else is a file path.
    pub fn open(target: &str, dash: Sink) -> io::Result<Sink> {
        if target == "-" {
            return Ok(dash);
        }
        let file = OpenOptions::new().create(true).append(true).open(target)?;
        Ok(Sink::File(file))
    }

    /// Writes one whole line in one `write` call, so lines from several processes never interleave.
    pub fn write_line(&mut self, line: &[u8]) {
        let result = match self {
            Sink::Stdout => io::stdout().lock().write_all(line),
            Sink::Stderr => io::stderr().lock().write_all(line),
            Sink::File(file) => file.write_all(line),
        };
        // A log that cannot be written has nowhere to report to; serving goes on.
        let _ = result;
    }
}
