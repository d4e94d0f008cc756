//! Files for tests: a copy of a directory tree to change one thing in (a bundle, a chart).

use std::path::Path;

/// Copy `from` into `to`, recursively (test data: panics on any I/O error).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest)
                .unwrap_or_else(|err| panic!("{} → {}: {err}", e.path().display(), dest.display()));
        }
    }
}
