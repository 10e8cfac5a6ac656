//! Releases: what a release name may be, the name `install!` gives one, and how two are
//! ordered (semantic versions where both parse, else the time each was first seen).

use std::cmp::Ordering;

/// The longest release name kept, in bytes.
pub(crate) const MAX_BYTES: usize = 200;

/// What a release name must be, for the errors that refuse one.
pub(crate) const EXPECTED: &str =
    "a release name: not empty, at most 200 bytes, no control characters";

/// Whether `name` may name a release: not empty (nor only spaces), at most
/// [`MAX_BYTES`], no control characters (a newline would forge a line of the tool's
/// output or a mail header).
pub(crate) fn is_valid(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= MAX_BYTES && !name.chars().any(char::is_control)
}

/// A release name as an error message quotes it: cut to its first 64 characters, so that
/// a huge one does not flood the message.
pub(crate) fn cut(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &name[..at]),
        None => name.to_owned(),
    }
}

/// The release a program built by cargo is, as `install!` names it: `package@version`, or
/// the version alone when the package name is unknown.
pub(crate) fn of_package(package: Option<&str>, version: Option<&str>) -> Option<String> {
    let version = version.map(str::trim).filter(|v| !v.is_empty())?;
    let name = match package.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => format!("{p}@{version}"),
        None => version.to_owned(),
    };
    is_valid(&name).then_some(name)
}

/// The semantic version in a release name: the whole name, or what follows its last `@`
/// (`app@1.2.0`), with a leading `v` allowed (`v1.2.0`).
pub(crate) fn version_of(name: &str) -> Option<semver::Version> {
    let version = name.rsplit('@').next().unwrap_or(name).trim();
    let version = version.strip_prefix('v').unwrap_or(version);
    semver::Version::parse(version).ok()
}

/// Whether release `a` (first seen at `a_seen_us`) is newer than release `b` (first seen at
/// `b_seen_us`): by semantic version when both names hold one, else by first seen.
pub(crate) fn is_newer(a: &str, a_seen_us: u64, b: &str, b_seen_us: u64) -> bool {
    if a == b {
        return false;
    }
    match (version_of(a), version_of(b)) {
        (Some(va), Some(vb)) if va != vb => va > vb,
        _ => a_seen_us > b_seen_us,
    }
}

/// Sorts releases oldest first: by semantic version when every name holds one, else by
/// first seen (a total order either way, whatever the names).
pub(crate) fn sort_oldest_first<T>(
    list: &mut [T],
    name: impl Fn(&T) -> &str,
    seen: impl Fn(&T) -> u64,
) {
    let versions: Option<Vec<semver::Version>> = list.iter().map(|r| version_of(name(r))).collect();
    match versions {
        Some(_) => list.sort_by(|a, b| {
            let (va, vb) = (version_of(name(a)), version_of(name(b)));
            va.cmp(&vb)
                .then(seen(a).cmp(&seen(b)))
                .then_with(|| name(a).cmp(name(b)))
        }),
        None => list.sort_by(|a, b| {
            seen(a)
                .cmp(&seen(b))
                .then_with(|| name(a).cmp(name(b)))
                .then(Ordering::Equal)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_for_emptiness_size_and_control_characters() {
        assert!(is_valid("app@1.2.0"));
        assert!(is_valid(&"x".repeat(MAX_BYTES)));
        for bad in ["", "   ", "1.0\n2.0", "tab\there", "\u{1b}[31mred"] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        assert!(!is_valid(&"x".repeat(MAX_BYTES + 1)));
    }

    #[test]
    fn a_package_release_is_name_at_version() {
        assert_eq!(
            of_package(Some("shop"), Some("1.4.0")).as_deref(),
            Some("shop@1.4.0")
        );
        assert_eq!(of_package(None, Some("1.4.0")).as_deref(), Some("1.4.0"));
        assert_eq!(of_package(Some("shop"), None), None);
        assert_eq!(of_package(Some("shop"), Some(" ")), None);
    }

    #[test]
    fn versions_order_by_semver_and_others_by_first_seen() {
        assert_eq!(
            version_of("app@v1.10.0"),
            semver::Version::parse("1.10.0").ok()
        );
        // 1.10 is newer than 1.9 though it was seen first and sorts first as text.
        assert!(is_newer("app@1.10.0", 1, "app@1.9.0", 2));
        assert!(!is_newer("app@1.9.0", 2, "app@1.10.0", 1));
        assert!(is_newer("1.0.0", 1, "1.0.0-rc.1", 2));
        // Not versions: the one seen later is newer, whatever its name.
        assert!(is_newer("alpha", 5, "zulu", 3));
        assert!(!is_newer("zulu", 3, "alpha", 5));
        // One of each: by first seen.
        assert!(is_newer("nightly", 9, "1.0.0", 1));
        assert!(!is_newer("same", 1, "same", 9));
    }

    #[test]
    fn a_list_sorts_by_version_only_when_all_are_versions() {
        let mut list = vec![("2.0.0", 1), ("1.10.0", 3), ("1.9.0", 2)];
        sort_oldest_first(&mut list, |r| r.0, |r| r.1);
        assert_eq!(list, [("1.9.0", 2), ("1.10.0", 3), ("2.0.0", 1)]);
        let mut mixed = vec![("2.0.0", 1), ("nightly", 3), ("1.9.0", 2)];
        sort_oldest_first(&mut mixed, |r| r.0, |r| r.1);
        assert_eq!(mixed, [("2.0.0", 1), ("1.9.0", 2), ("nightly", 3)]);
    }
}
