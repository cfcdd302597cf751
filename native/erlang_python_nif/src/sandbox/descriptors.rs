//! The VM's file descriptors, as they were when Python started.
//!
//! The kernel filter protects 0-2 and the VM's pollsets by number (their
//! numbers are never reused). The VM's other descriptors come and go, so a
//! number alone could later name one of Python's own files; here each is
//! remembered with the identity (device, inode) of what it was open on, and
//! `os.close` and `os.dup2` refuse a descriptor only while it still names
//! that same file.

use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, OnceLock};

static SNAPSHOT: OnceLock<Vec<(i64, u64, u64)>> = OnceLock::new();

/// Descriptors the sandbox itself opened later (the supervisor's).
static SANDBOX_OWN: Mutex<Vec<(i64, u64, u64)>> = Mutex::new(Vec::new());

/// Protects a descriptor the sandbox opened after the snapshot.
pub fn protect(fd: i64) {
    if let Some((dev, ino)) = identity(fd) {
        let mut own = SANDBOX_OWN.lock().unwrap_or_else(|p| p.into_inner());
        own.push((fd, dev, ino));
    }
}

/// Records the descriptors open now. Called once, before Python starts.
pub fn snapshot() {
    SNAPSHOT.get_or_init(|| {
        let mut found: Vec<(i64, u64, u64)> = open_descriptors()
            .into_iter()
            .filter_map(|fd| identity(fd).map(|(dev, ino)| (fd, dev, ino)))
            .collect();
        // The directory listing itself was open while we listed it.
        found.retain(|(fd, dev, ino)| identity(*fd) == Some((*dev, *ino)));
        found
    });
}

fn open_descriptors() -> Vec<i64> {
    std::fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// (device, inode) of what `fd` is open on, if it is open.
fn identity(fd: i64) -> Option<(u64, u64)> {
    let metadata = std::fs::metadata(format!("/proc/self/fd/{fd}")).ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// Whether `fd` is one of the VM's: 0-2 always, others while they still
/// name what they named when Python started.
pub fn belongs_to_vm(fd: i64) -> bool {
    if (0..=2).contains(&fd) {
        return true;
    }
    let same =
        |(known, dev, ino): &(i64, u64, u64)| *known == fd && identity(fd) == Some((*dev, *ino));
    let own = SANDBOX_OWN.lock().unwrap_or_else(|p| p.into_inner());
    SNAPSHOT.get().is_some_and(|s| s.iter().any(same)) || own.iter().any(same)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_descriptors_always_belong_to_the_vm() {
        for fd in 0..=2 {
            assert!(belongs_to_vm(fd));
        }
        assert!(!belongs_to_vm(-1));
    }
}
