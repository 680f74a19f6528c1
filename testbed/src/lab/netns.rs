//! Named network namespaces, compatible with `ip netns`: a namespace is kept
//! alive by a bind mount of its `nsfs` file on `/run/netns/NAME`.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Where `ip netns` keeps its namespaces.
pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

fn c_path(path: &std::path::Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

/// Creates namespace `name` (fails if it exists).
pub fn create(name: &str) -> io::Result<()> {
    fs::create_dir_all(NETNS_DIR)?;
    let target = path(name);
    File::options().write(true).create_new(true).open(&target)?;
    let c_target = c_path(&target)?;
    // A thread of its own: unshare moves only the calling thread, which then
    // ends, leaving the namespace held by the mount alone.
    let made = std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unshare affects only this thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let source = c"/proc/thread-self/ns/net";
        // SAFETY: both paths are live NUL-terminated strings; a bind mount
        // with no data.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                c_target.as_ptr(),
                c"none".as_ptr(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?;
    if let Err(error) = made {
        let _ = fs::remove_file(&target);
        return Err(error);
    }
    Ok(())
}

/// Removes namespace `name`; the kernel destroys it (and its links) once no
/// process is left in it. A missing namespace is not an error.
pub fn delete(name: &str) -> io::Result<()> {
    let target = path(name);
    if !target.exists() {
        return Ok(());
    }
    let c_target = c_path(&target)?;
    // SAFETY: a live NUL-terminated path; a lazy unmount of our bind mount.
    unsafe { libc::umount2(c_target.as_ptr(), libc::MNT_DETACH) };
    match fs::remove_file(&target) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Opens namespace `name` (for `setns` or `IFLA_NET_NS_FD`).
pub fn open(name: &str) -> io::Result<File> {
    File::open(path(name))
}

/// Moves the calling thread into the namespace open at `namespace`.
pub fn enter(namespace: &File) -> io::Result<()> {
    // SAFETY: the descriptor is a live namespace file; setns changes only this
    // thread's network namespace.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Namespaces under `/run/netns` whose name starts with `prefix`.
pub fn list(prefix: &str) -> Vec<String> {
    super::prefixed::entries_named(NETNS_DIR, prefix)
}

/// Processes whose network namespace is `name`'s.
pub fn processes_in(name: &str) -> Vec<i32> {
    let Ok(inode) = fs::metadata(path(name)).map(|m| m.ino()) else {
        return Vec::new();
    };
    let wanted = format!("net:[{inode}]");
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|link| link.as_os_str() == wanted.as_str())
        })
        .collect()
}
