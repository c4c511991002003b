//! ferrogate: a PEP 3333 WSGI server written in Rust, driven from Python.
//!
//! # Layout
//! - `config`: every setting, declared once (CLI, env, Python keywords derive from it).
//! - `observe`: the error log and the access log.
//! - `handler`: the seam between HTTP and whatever answers requests.
//! - `http`: HTTP/1 on the wire (heads, bodies, keep-alive, responses), failure → status mapping.
//! - `middleware`: native layers (mount, static files, IP filter, rate limit, request id,
//!   compression) that answer requests without Python, lifted from WSGI objects or settings.
//! - `server`: one worker's listeners, accept loop, TLS (rustls) and graceful drain.
//! - `supervisor`: the master process (workers, respawn, signals).
//! - `wsgi`: the PEP 3333 bridge (the only place, with `python`, that touches Python).
//! - `python`: the Python-facing entry points, the fork launcher and `make_server`.
//!
//! One request's journey is told file by file in docs/architecture.md.

pub mod config;
pub mod error;
pub mod handler;
pub mod http;
pub mod middleware;
pub mod observe;
pub mod python;
pub mod server;
pub mod shared_slots;
pub mod supervisor;
pub mod wsgi;

#[cfg(test)]
mod fuzz_tests;

use pyo3::prelude::*;

#[pymodule]
fn _ferrogate(module: &Bound<'_, PyModule>) -> PyResult<()> {
    configure_allocator();
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_function(wrap_pyfunction!(python::main, module)?)?;
    module.add_function(wrap_pyfunction!(python::run, module)?)?;
    module.add_function(wrap_pyfunction!(python::setting_names, module)?)?;
    module.add_function(wrap_pyfunction!(python::gunicorn_table, module)?)?;
    module.add_function(wrap_pyfunction!(python::settings_table, module)?)?;
    module.add_function(wrap_pyfunction!(python::log_line, module)?)?;
    module.add_class::<python::SimpleServer>()?;
    module.add_class::<wsgi::FileWrapper>()?;
    module.add(
        "RequestTimeout",
        module.py().get_type::<python::errors::RequestTimeout>(),
    )?;
    python::middleware::register(module)?;
    Ok(())
}

// PERF: mimalloc for the Rust side: ~4% fewer instructions per request than glibc malloc
// (benches/README.md, "allocator"). See `configure_allocator` for its memory footprint.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc.h (v3). Eagerly committed arenas raised a hello
/// worker's peak RSS from 15 to 23.5 MiB; committing on demand costs nothing measurable.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

fn configure_allocator() {
    // SAFETY: sets a plain integer option; mimalloc reads options before creating arenas.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
}
