//! Support shared by the integration tests in `tests/`; the subprocess scenarios they
//! drive are the binaries in `src/bin/`.

use std::path::Path;

/// Every byte of every file under `dir`: what a secret must never be found in.
pub fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).expect("read dir") {
                stack.push(e.expect("dir entry").path());
            }
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.extend(bytes);
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
