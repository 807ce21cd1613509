//! Reading one spec file without trusting what it is. The config folder may
//! hold anything under a `.yaml` name: a FIFO would block the read forever,
//! a device such as /dev/zero never ends, and a huge file would be read whole
//! into memory. So a file's type and size are checked before it is opened,
//! and again on the opened file, whose read is capped.

use std::fs::{Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::SpecError;

/// The largest spec file rlsctl reads: a spec of 100,000 tables is about
/// 3 MiB, and a limit keeps a mistaken or hostile file from exhausting memory.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// The text of the spec file at `path`: a regular file (or a symbolic link to
/// one) of at most [`MAX_FILE_BYTES`].
pub fn read_spec_file(path: &Path) -> Result<String, SpecError> {
    let cannot =
        |e: std::io::Error| SpecError::general(format!("cannot read {}: {e}", path.display()));
    // Follows symbolic links: what matters is what would be read.
    let metadata = std::fs::metadata(path).map_err(cannot)?;
    check(path, &metadata)?;
    // Non-blocking, so that a file swapped for a FIFO since the check cannot
    // hang the open; it changes nothing for reading a regular file.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(cannot)?;
    check(path, &file.metadata().map_err(cannot)?)?;
    // One byte past the limit is enough to tell the file grew past it.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(path, bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        SpecError::general(format!(
            "cannot read {}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn check(path: &Path, metadata: &Metadata) -> Result<(), SpecError> {
    let kind = metadata.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        // `read_link` succeeds only on a symbolic link.
        let through_link = match std::fs::read_link(path) {
            Ok(target) => format!(" (a symbolic link to {})", target.display()),
            Err(_) => String::new(),
        };
        return Err(SpecError::general(format!(
            "refusing to read {}: it is {what}{through_link}; spec files must be regular files",
            path.display()
        )));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(path, metadata.len()));
    }
    Ok(())
}

fn too_large(path: &Path, size: u64) -> SpecError {
    SpecError::general(format!(
        "refusing to read {}: it is {size} bytes, over the limit of {MAX_FILE_BYTES} bytes (10 MiB) per spec file",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn a_regular_file_and_a_symlink_to_one_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, "roles: []\n").unwrap();
        let link = dir.path().join("b.yaml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_spec_file(&file).unwrap(), "roles: []\n");
        assert_eq!(read_spec_file(&link).unwrap(), "roles: []\n");
    }

    #[test]
    fn a_directory_named_like_a_spec_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("x.yaml");
        std::fs::create_dir(&sub).unwrap();
        let err = read_spec_file(&sub).unwrap_err();
        assert!(err.message.contains("a directory"), "{err}");
        assert!(err.message.contains("x.yaml"), "{err}");
    }

    #[test]
    fn a_symlink_to_a_device_is_refused_naming_the_link_and_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read_spec_file(&link).unwrap_err();
        assert!(err.message.contains("a character device"), "{err}");
        assert!(err.message.contains("zero.yaml"), "{err}");
        assert!(err.message.contains("/dev/zero"), "{err}");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_with_its_size_and_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.yaml");
        let size = MAX_FILE_BYTES + 1;
        File::create(&file).unwrap().set_len(size).unwrap();
        let err = read_spec_file(&file).unwrap_err();
        assert!(err.message.contains(&size.to_string()), "{err}");
        assert!(err.message.contains(&MAX_FILE_BYTES.to_string()), "{err}");
    }

    #[test]
    fn a_file_of_exactly_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("edge.yaml");
        std::fs::write(&file, " ".repeat(MAX_FILE_BYTES as usize)).unwrap();
        assert_eq!(read_spec_file(&file).unwrap().len() as u64, MAX_FILE_BYTES);
    }
}
