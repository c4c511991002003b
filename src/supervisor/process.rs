//! Process settings: `--umask`, `--pid` (written after binding, removed on exit) and
//! `--user`/`--group` (resolved in the master at start, so a typo fails before any worker
//! exists; taken on by each worker right after the fork, before the app is imported).
//! Knows nothing of HTTP or Python.

use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};

pub fn set_umask(mask: u32) {
    // SAFETY: umask has no memory-safety preconditions.
    unsafe {
        libc::umask(mask as libc::mode_t);
    }
}

/// The pid file of the master; removed when dropped, in the master only.
pub struct PidFile {
    path: PathBuf,
    owner: u32,
}

impl PidFile {
    pub fn write(path: &Path) -> io::Result<PidFile> {
        let owner = std::process::id();
        std::fs::write(path, format!("{owner}\n"))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            owner,
        })
    }

    /// Moves the file (SIGUSR2 makes way for the new master's, and takes it back when that
    /// one fails); it is removed at exit under its new name.
    pub fn rename(&mut self, to: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.path = to.to_path_buf();
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // A forked worker holds a copy of this value; only the process that wrote the file
        // removes it.
        if std::process::id() == self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Who the workers run as.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: Option<(String, Uid)>,
    pub group: Gid,
    group_name: String,
}

/// Resolves `--user` and `--group` (names or numbers). `None` when neither is given.
pub fn resolve_identity(
    user: Option<&str>,
    group: Option<&str>,
) -> Result<Option<Identity>, String> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let user = match user {
        None => None,
        Some(name) => Some(find_user(name)?),
    };
    let (group, group_name) = match (group, &user) {
        (Some(name), _) => find_group(name)?,
        (None, Some(user)) => (user.gid, group_name_of(user.gid)),
        (None, None) => unreachable!("one of them is given"),
    };
    Ok(Some(Identity {
        user: user.map(|u| (u.name, u.uid)),
        group,
        group_name,
    }))
}

fn find_user(name: &str) -> Result<User, String> {
    let found = match name.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(name),
    };
    match found {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(format!("--user {name}: no such user")),
        Err(error) => Err(format!("--user {name}: {error}")),
    }
}

fn find_group(name: &str) -> Result<(Gid, String), String> {
    let found = match name.parse::<u32>() {
        Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
        Err(_) => Group::from_name(name),
    };
    match found {
        Ok(Some(group)) => Ok((group.gid, group.name)),
        Ok(None) => Err(format!("--group {name}: no such group")),
        Err(error) => Err(format!("--group {name}: {error}")),
    }
}

fn group_name_of(gid: Gid) -> String {
    Group::from_gid(gid)
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |group| group.name)
}

impl Identity {
    /// Takes on this identity for good: group, supplementary groups, then user (in that
    /// order: once the user is not root, the groups can no longer be changed).
    pub fn assume(&self) -> io::Result<()> {
        if let Some((name, uid)) = &self.user {
            let c_name = std::ffi::CString::new(name.as_str()).map_err(io::Error::other)?;
            nix::unistd::initgroups(&c_name, self.group).map_err(io::Error::from)?;
            nix::unistd::setgid(self.group).map_err(io::Error::from)?;
            nix::unistd::setuid(*uid).map_err(io::Error::from)?;
        } else {
            nix::unistd::setgroups(&[self.group]).map_err(io::Error::from)?;
            nix::unistd::setgid(self.group).map_err(io::Error::from)?;
        }
        Ok(())
    }

    /// Gives a socket file (or any file the master made for the workers) to this identity,
    /// so that the workers' user and group, and a proxy in the group, may use it (gunicorn
    /// does the same for its Unix sockets).
    pub fn give(&self, path: &Path) -> io::Result<()> {
        let uid = self.user.as_ref().map(|(_, uid)| *uid);
        nix::unistd::chown(path, uid, Some(self.group)).map_err(io::Error::from)
    }

    pub fn describe(&self) -> String {
        match &self.user {
            Some((name, uid)) => format!(
                "user {name} ({uid}), group {} ({})",
                self.group_name, self.group
            ),
            None => format!("group {} ({})", self.group_name, self.group),
        }
    }
}
