//! Builds the PEP 3333 `environ` dict: a per-thread template holding every per-server key is
//! copied, then the per-request keys are set with interned names.

use std::borrow::Cow;

use foldhash::HashMap;
use http::header::{HeaderName, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST};
use http::request::Parts;
use http::{Method, Version};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::address_strings::AddressStrings;
use super::errors::WsgiErrors;
use super::file_wrapper::FileWrapper;
use super::input::WsgiInput;
use super::WsgiConfig;
use crate::handler::{ConnectionInfo, Scheme, TlsFacts};

/// Entries the environ template has room for: its own keys plus the request's headers, so a
/// copy of it takes a typical request's headers without growing (which rebuilds the table).
const TEMPLATE_ROOM: isize = 40;

/// Distinct SCRIPT_NAMEs (native mount points) a thread keeps a template for.
const MAX_CACHED_SCRIPT_NAMES: usize = 64;

/// Distinct header names whose `HTTP_*` key a thread keeps ready. Bounded, because header
/// names are chosen by clients.
const MAX_CACHED_HEADER_KEYS: usize = 128;

/// Interned environ keys, made once per thread.
struct Keys {
    request_method: Py<PyString>,
    path_info: Py<PyString>,
    query_string: Py<PyString>,
    content_type: Py<PyString>,
    content_length: Py<PyString>,
    server_name: Py<PyString>,
    server_port: Py<PyString>,
    server_protocol: Py<PyString>,
    remote_addr: Py<PyString>,
    remote_port: Py<PyString>,
    raw_uri: Py<PyString>,
    request_uri: Py<PyString>,
    wsgi_input: Py<PyString>,
    /// Values common enough to be made once.
    empty: Py<PyString>,
    http10: Py<PyString>,
    http11: Py<PyString>,
    http2: Py<PyString>,
    methods: [(Method, Py<PyString>); 5],
}

impl Keys {
    fn new(py: Python<'_>) -> Keys {
        let key = |name| PyString::intern(py, name).unbind();
        Keys {
            request_method: key("REQUEST_METHOD"),
            path_info: key("PATH_INFO"),
            query_string: key("QUERY_STRING"),
            content_type: key("CONTENT_TYPE"),
            content_length: key("CONTENT_LENGTH"),
            server_name: key("SERVER_NAME"),
            server_port: key("SERVER_PORT"),
            server_protocol: key("SERVER_PROTOCOL"),
            remote_addr: key("REMOTE_ADDR"),
            remote_port: key("REMOTE_PORT"),
            raw_uri: key("RAW_URI"),
            request_uri: key("REQUEST_URI"),
            wsgi_input: key("wsgi.input"),
            empty: key(""),
            http10: key("HTTP/1.0"),
            http11: key("HTTP/1.1"),
            http2: key("HTTP/2"),
            methods: [
                Method::GET,
                Method::POST,
                Method::HEAD,
                Method::PUT,
                Method::DELETE,
            ]
            .map(|method| {
                let name = PyString::intern(py, method.as_str()).unbind();
                (method, name)
            }),
        }
    }

    /// The keys `build` sets on every request.
    fn always_set(&self) -> [&Py<PyString>; 11] {
        [
            &self.request_method,
            &self.path_info,
            &self.query_string,
            &self.server_name,
            &self.server_port,
            &self.server_protocol,
            &self.remote_addr,
            &self.remote_port,
            &self.raw_uri,
            &self.request_uri,
            &self.wsgi_input,
        ]
    }

    fn method(&self, method: &Method) -> Option<&Py<PyString>> {
        self.methods
            .iter()
            .find(|(known, _)| known == method)
            .map(|(_, string)| string)
    }
}

pub struct EnvironBuilder {
    template: Py<PyDict>,
    keys: Keys,
    /// PERF: foldhash, not SipHash; bounded by MAX_CACHED_HEADER_KEYS.
    header_keys: HashMap<HeaderName, Py<PyString>>,
    /// The template with a native mount point's SCRIPT_NAME in it, per mount point.
    mounted_templates: HashMap<Box<[u8]>, Py<PyDict>>,
    addresses: AddressStrings,
    /// PATH_INFO and REQUEST_URI as last made, for the next request on this thread.
    recent_path: RecentString,
    recent_target: RecentString,
    root_path: Vec<u8>,
}

/// Paths longer than this are made anew each time rather than remembered.
const MAX_RECENT_BYTES: usize = 256;

/// The string last made for one environ key, kept for the next request that sends the same
/// bytes: a keep-alive client, or the clients of a busy endpoint, send one path again and
/// again, and a `str` is immutable, so one can serve them all.
// PERF: hello at /c/ (benches/callgrind; benches/README.md, issue 12's mount3 row).
#[derive(Default)]
struct RecentString {
    bytes: Vec<u8>,
    string: Option<Py<PyString>>,
}

impl RecentString {
    fn get<'py>(&mut self, py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
        if let Some(string) = &self.string {
            if self.bytes == bytes {
                return Ok(string.bind(py).clone());
            }
        }
        let string = latin1_str(py, bytes)?;
        if bytes.len() <= MAX_RECENT_BYTES {
            self.bytes.clear();
            self.bytes.extend_from_slice(bytes);
            self.string = Some(string.clone().unbind());
        }
        Ok(string)
    }
}

/// A `str` whose code points are the bytes (PEP 3333's "native string" for header data).
pub fn latin1_str<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // PERF: one call builds a 1-byte-kind string from the bytes, with no UTF-8 validation or
    // re-encoding (benches/callgrind environ_json).
    // SAFETY: kind 1 means one latin-1 code unit per byte, which every byte value is; CPython
    // copies `bytes` before returning; a null result is turned into the raised exception.
    unsafe {
        let string = pyo3::ffi::PyUnicode_FromKindAndData(
            pyo3::ffi::PyUnicode_1BYTE_KIND as std::os::raw::c_int,
            bytes.as_ptr().cast(),
            bytes.len() as pyo3::ffi::Py_ssize_t,
        );
        Ok(Bound::from_owned_ptr_or_err(py, string)?.cast_into_unchecked())
    }
}

extern "C" {
    /// CPython's presized dict constructor: exported, but not wrapped by pyo3-ffi.
    fn _PyDict_NewPresized(minused: pyo3::ffi::Py_ssize_t) -> *mut pyo3::ffi::PyObject;
}

/// `User-Agent` → `HTTP_USER_AGENT`.
fn cgi_header_key(name: &HeaderName) -> String {
    let mut key = String::with_capacity(5 + name.as_str().len());
    key.push_str("HTTP_");
    key.extend(name.as_str().chars().map(|c| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    key
}

/// The environ template of a request a native Mount routed: SCRIPT_NAME is the decoded
/// path's `mounted` start, after `--root-path` when the path did not begin with it. PERF: a
/// template per mount point, so such a request pays no SCRIPT_NAME store of its own
/// (benches/README.md, "mount3").
fn mounted_template<'py>(
    py: Python<'py>,
    cache: &mut HashMap<Box<[u8]>, Py<PyDict>>,
    template: &Py<PyDict>,
    root_path: &[u8],
    mounted: &[u8],
    under_root: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let owned;
    let bytes = match under_root {
        true => mounted,
        false => {
            owned = [root_path, mounted].concat();
            owned.as_slice()
        }
    };
    if let Some(cached) = cache.get(bytes) {
        return Ok(cached.bind(py).clone());
    }
    let mounted_template = template.bind(py).copy()?;
    mounted_template.set_item("SCRIPT_NAME", latin1_str(py, bytes)?)?;
    // Bounded all the same: one entry per mount point the app was built with.
    if cache.len() < MAX_CACHED_SCRIPT_NAMES {
        cache.insert(bytes.into(), mounted_template.clone().unbind());
    }
    Ok(mounted_template)
}

impl EnvironBuilder {
    pub fn new(py: Python<'_>, config: &WsgiConfig) -> PyResult<EnvironBuilder> {
        // PERF: presized (copies keep its size), one dict resize per request less
        // (benches/callgrind hello).
        // SAFETY: _PyDict_NewPresized returns a new reference to an empty dict, or null with
        // the exception set, which from_owned_ptr_or_err turns into the error.
        let template = unsafe {
            Bound::from_owned_ptr_or_err(py, _PyDict_NewPresized(TEMPLATE_ROOM))?
                .cast_into_unchecked::<PyDict>()
        };
        template.set_item("wsgi.version", (1, 0))?;
        template.set_item("wsgi.url_scheme", "http")?;
        template.set_item("wsgi.errors", Py::new(py, WsgiErrors)?)?;
        template.set_item("wsgi.multithread", config.threads > 1)?;
        template.set_item("wsgi.multiprocess", config.workers > 1)?;
        template.set_item("wsgi.run_once", false)?;
        template.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        template.set_item("wsgi.input_terminated", true)?;
        template.set_item("SCRIPT_NAME", latin1_str(py, config.root_path.as_bytes())?)?;
        template.set_item(
            "SERVER_SOFTWARE",
            concat!("ferrogate/", env!("CARGO_PKG_VERSION")),
        )?;
        let keys = Keys::new(py);
        // PERF: every key set on each request is already in the template (as None), so the
        // copy is sized for them and setting them replaces values instead of growing the dict
        // (benches/callgrind hello).
        for key in keys.always_set() {
            template.set_item(key.bind(py), py.None())?;
        }
        Ok(EnvironBuilder {
            template: template.unbind(),
            keys,
            header_keys: HashMap::default(),
            mounted_templates: HashMap::default(),
            addresses: AddressStrings::default(),
            recent_path: RecentString::default(),
            recent_target: RecentString::default(),
            root_path: config.root_path.as_bytes().to_vec(),
        })
    }

    fn header_key<'py>(&mut self, py: Python<'py>, name: &HeaderName) -> Bound<'py, PyString> {
        if let Some(key) = self.header_keys.get(name) {
            return key.bind(py).clone();
        }
        let key = PyString::new(py, &cgi_header_key(name));
        if self.header_keys.len() < MAX_CACHED_HEADER_KEYS {
            self.header_keys.insert(name.clone(), key.clone().unbind());
        }
        key
    }

    /// PATH_INFO: the percent-decoded path, minus the mount prefix when it starts with it.
    fn path_info<'a>(&self, decoded: &'a [u8]) -> &'a [u8] {
        let root = self.root_path.as_slice();
        if !root.is_empty()
            && decoded.starts_with(root)
            && matches!(decoded.get(root.len()), None | Some(b'/'))
        {
            &decoded[root.len()..]
        } else {
            decoded
        }
    }

    pub fn build<'py>(
        &mut self,
        py: Python<'py>,
        head: &Parts,
        connection: &ConnectionInfo,
        input: Bound<'py, WsgiInput>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let uri = &head.uri;
        let decoded: Cow<'_, [u8]> = percent_encoding::percent_decode_str(uri.path()).into();
        let (environ, path_info) = match connection.mount {
            // Only a request routed by a native Mount has a SCRIPT_NAME of its own.
            Some(mount) => {
                let offset = (mount.path_offset as usize).min(decoded.len());
                let template = mounted_template(
                    py,
                    &mut self.mounted_templates,
                    &self.template,
                    &self.root_path,
                    &decoded[..offset],
                    mount.under_root,
                )?;
                (template.copy()?, &decoded[offset..])
            }
            None => (self.template.bind(py).copy()?, self.path_info(&decoded)),
        };
        let keys = &self.keys;
        let method = match keys.method(&head.method) {
            Some(method) => method.bind(py).clone(),
            None => PyString::new(py, head.method.as_str()),
        };
        environ.set_item(keys.request_method.bind(py), method)?;
        let path_info = self.recent_path.get(py, path_info)?;
        environ.set_item(keys.path_info.bind(py), path_info)?;
        let query = match uri.query() {
            None | Some("") => keys.empty.bind(py).clone(),
            Some(query) => latin1_str(py, query.as_bytes())?,
        };
        environ.set_item(keys.query_string.bind(py), query)?;
        // RFC 9112 §3.2: origin-form is what clients send; absolute-form is kept whole.
        let target = match (uri.scheme(), uri.path_and_query()) {
            (None, Some(origin)) => self.recent_target.get(py, origin.as_str().as_bytes())?,
            _ => latin1_str(py, uri.to_string().as_bytes())?,
        };
        environ.set_item(keys.raw_uri.bind(py), &target)?;
        environ.set_item(keys.request_uri.bind(py), &target)?;
        let protocol = match head.version {
            Version::HTTP_10 => keys.http10.bind(py),
            Version::HTTP_2 => keys.http2.bind(py),
            _ => keys.http11.bind(py),
        };
        environ.set_item(keys.server_protocol.bind(py), protocol)?;
        let [remote_addr, remote_port] = self.addresses.remote(py, connection.peer);
        environ.set_item(self.keys.remote_addr.bind(py), remote_addr)?;
        environ.set_item(self.keys.remote_port.bind(py), remote_port)?;

        // PERF: one pass over (name, value) pairs; a name's further values follow it directly
        // in HeaderMap::iter, as references to the same name (no lookup per name).
        let mut host = None;
        let mut headers = head.headers.iter().peekable();
        while let Some((name, first)) = headers.next() {
            let mut joined: Option<Vec<u8>> = None;
            while let Some((_, more)) = headers.next_if(|(next, _)| std::ptr::eq(*next, name)) {
                let separator: &[u8] = if name == COOKIE { b"; " } else { b", " };
                let joined = joined.get_or_insert_with(|| first.as_bytes().to_vec());
                joined.extend_from_slice(separator);
                joined.extend_from_slice(more.as_bytes());
            }
            let key = if name == CONTENT_TYPE {
                self.keys.content_type.bind(py).clone()
            } else if name == CONTENT_LENGTH {
                // Never beside Transfer-Encoding: http/request.rs refuses such a request.
                self.keys.content_length.bind(py).clone()
            } else if name == HOST {
                host = Some(first);
                self.header_key(py, name)
            } else if name.as_str().as_bytes().contains(&b'_') {
                // `X_Forwarded_For` must not pose as `X-Forwarded-For` (both map to HTTP_X_FORWARDED_FOR).
                continue;
            } else {
                self.header_key(py, name)
            };
            let value = latin1_str(py, joined.as_deref().unwrap_or(first.as_bytes()))?;
            environ.set_item(key, value)?;
        }
        let [server_name, server_port] = self.addresses.server(py, host, connection);
        environ.set_item(self.keys.server_name.bind(py), server_name)?;
        environ.set_item(self.keys.server_port.bind(py), server_port)?;
        environ.set_item(self.keys.wsgi_input.bind(py), input)?;
        // The template says "http"; PERF: only a request that came over https pays for this.
        if connection.scheme == Scheme::Https {
            environ.set_item("wsgi.url_scheme", "https")?;
        }
        if let Some(tls) = &connection.tls {
            set_tls_keys(&environ, tls)?;
        }
        Ok(environ)
    }
}

/// mod_ssl's names for the TLS connection a request came on (HTTPS, SSL_*).
fn set_tls_keys(environ: &Bound<'_, PyDict>, tls: &TlsFacts) -> PyResult<()> {
    environ.set_item("HTTPS", "on")?;
    environ.set_item("SSL_PROTOCOL", tls.protocol)?;
    environ.set_item("SSL_CIPHER", tls.cipher)?;
    if let Some(name) = &tls.server_name {
        environ.set_item("SSL_TLS_SNI", &**name)?;
    }
    match &tls.client {
        Some(client) => {
            // rustls verified it against --ca-certs, or the handshake failed.
            environ.set_item("SSL_CLIENT_VERIFY", "SUCCESS")?;
            environ.set_item("SSL_CLIENT_CERT", &client.pem)?;
            environ.set_item("SSL_CLIENT_S_DN", &client.subject)?;
            environ.set_item("SSL_CLIENT_I_DN", &client.issuer)?;
            environ.set_item("SSL_CLIENT_M_SERIAL", &client.serial)?;
            environ.set_item("SSL_CLIENT_V_START", &client.not_before)?;
            environ.set_item("SSL_CLIENT_V_END", &client.not_after)?;
        }
        None => environ.set_item("SSL_CLIENT_VERIFY", "NONE")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_become_cgi_keys() {
        assert_eq!(
            cgi_header_key(&HeaderName::from_static("user-agent")),
            "HTTP_USER_AGENT"
        );
        assert_eq!(
            cgi_header_key(&HeaderName::from_static("x-a-b")),
            "HTTP_X_A_B"
        );
    }
}
