//! Broken links: a 404 that a page linked to, not a bot probing, not a search engine, not an ignorable URL.

use regex::Regex;

/// Addresses never reported as broken links: requests browsers and scanners make on their
/// own (icons, robots, PHP probes).
pub(crate) const DEFAULT_IGNORABLE_404_URLS: [&str; 4] = [
    r"^/favicon\.ico$",
    r"^/robots\.txt$",
    r"^/apple-touch-icon.*\.png$",
    r"(?i)\.php$",
];

/// How a 404 is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not reported.
    Ignored,
    /// A link from another site.
    External,
    /// A link from this site: one of our own pages is wrong.
    Internal,
}

/// `scheme://host` and the rest of a referer, when it is an absolute URL.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let (_, rest) = url.split_once("://")?;
    match rest.find('/') {
        Some(i) => Some((&rest[..i], &rest[i..])),
        None => Some((rest, "/")),
    }
}

/// Judges a 404 of `path` (`full_path` with its query) on `host`, reached from `referer`.
pub(crate) fn verdict(
    host: &str,
    path: &str,
    full_path: &str,
    referer: &str,
    ignorable: &[Regex],
) -> Verdict {
    if referer.is_empty() {
        return Verdict::Ignored;
    }
    // A slash appended by a redirect: the referer is the same path without it.
    if full_path.ends_with('/') && referer == &full_path[..full_path.len() - 1] {
        return Verdict::Ignored;
    }
    let (ref_host, ref_path) = split_url(referer).unwrap_or(("", referer));
    let internal = !host.is_empty() && ref_host.eq_ignore_ascii_case(host);
    // A `?` in an outside referer is a search engine's result page.
    if !internal && referer.contains('?') {
        return Verdict::Ignored;
    }
    // The page refers to itself: a badly written bot.
    let ref_path_only = ref_path.split('?').next().unwrap_or(ref_path);
    if (ref_host.is_empty() || internal) && (ref_path == full_path || ref_path_only == full_path) {
        return Verdict::Ignored;
    }
    if ignorable.iter().any(|r| r.is_match(path)) {
        return Verdict::Ignored;
    }
    if internal {
        Verdict::Internal
    } else {
        Verdict::External
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<Regex> {
        DEFAULT_IGNORABLE_404_URLS
            .iter()
            .map(|p| Regex::new(p).unwrap())
            .collect()
    }

    fn judge(path: &str, referer: &str) -> Verdict {
        let full = path;
        let path_only = path.split('?').next().unwrap();
        verdict("shop.test", path_only, full, referer, &defaults())
    }

    #[test]
    fn django_rules() {
        assert_eq!(judge("/gone", ""), Verdict::Ignored);
        assert_eq!(judge("/gone", "http://shop.test/list"), Verdict::Internal);
        assert_eq!(judge("/gone", "https://blog.test/post"), Verdict::External);
        assert_eq!(
            judge("/gone", "https://www.search.test/?q=x"),
            Verdict::Ignored
        );
        assert_eq!(
            judge("/gone?a=1", "http://shop.test/gone?a=1"),
            Verdict::Ignored
        );
        assert_eq!(judge("/gone", "https://shop.test/gone"), Verdict::Ignored);
        assert_eq!(judge("/gone", "/gone"), Verdict::Ignored);
        assert_eq!(judge("/gone/", "/gone"), Verdict::Ignored);
        assert_eq!(judge("/favicon.ico", "http://shop.test/"), Verdict::Ignored);
        assert_eq!(judge("/robots.txt", "http://shop.test/"), Verdict::Ignored);
        assert_eq!(
            judge("/apple-touch-icon-precomposed.png", "http://shop.test/"),
            Verdict::Ignored
        );
        assert_eq!(judge("/wp-login.PHP", "http://x.test/"), Verdict::Ignored);
        assert_eq!(
            judge("/a/favicon.ico", "http://shop.test/"),
            Verdict::Internal
        );
    }
}
