//! The open-file limit: raised from the soft limit to the hard one at startup, as nginx and
//! uWSGI do, because each connection is a descriptor and `--max-connections` (1024 by default,
//! per worker) would otherwise meet a soft limit of 1024 first (accept() failing with EMFILE).

/// Descriptors a worker needs besides its connections: listeners, logs, the runtime's own,
/// and what the app opens.
const SPARE_DESCRIPTORS: u64 = 256;

/// Raises the soft limit to the hard one; warns when even that leaves too few descriptors for
/// `connections` per worker.
pub fn raise_open_file_limit(connections: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on this process with a valid, initialised struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    // A connection whose body the app's thread reads holds a duplicate of its descriptor
    // (http/h1/direct_body.rs), so each connection may count twice.
    let needed = connections
        .saturating_mul(2)
        .saturating_add(SPARE_DESCRIPTORS);
    if limit.rlim_cur < needed {
        log::warn!(
            "The open-file limit is {}: too low for --max-connections {connections}; raise it \
             (ulimit -n, or LimitNOFILE= in a systemd unit)",
            limit.rlim_cur
        );
    }
}
