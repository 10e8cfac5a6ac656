"""Sentry's own verdict on events: Relay's store normalizer and its default data scrubber.

    relay_check.py FILE     FILE holds events, one Sentry event (JSON) a line

Run by scripts/relay.sh inside the virtualenv that holds `sentry-relay`. For each event,
in the order Sentry's ingestion runs them:

1. the store normalizer; its errors (the normalized event's `errors` and every `err` of
   its `_meta`) are findings of kind `normalizer-error`;
2. the data scrubber with a Sentry project's default settings (see CONFIG) over the
   normalized event; every value it removed or replaced (a remark in `_meta` that the
   normalized event did not have) is a finding of kind `scrubbed`, or of kind `allowed`
   when it discloses nothing: what it removed is only our placeholder `**********`
   (there because we redacted first), or a text that Relay removes whole for naming a
   secret (`password`, `api_key`, `auth`, ...) where each secret it names is already our
   placeholder (`retried with password=**********`).

Prints one JSON document: {"events": [{"line": N, "event_id": ..., "findings": [...]}]},
each finding with the path in the event, the rule, the value at that path before
scrubbing and, for a part of a text, the part removed.
"""

import json
import re
import sys

from sentry_relay.processing import (
    StoreNormalizer,
    convert_datascrubbing_config,
    pii_strip_event,
)

PLACEHOLDER = "**********"

# A new Sentry project's "Security & Privacy" settings: data scrubbing and the default
# scrubbers on, no extra sensitive fields, nothing exempt. "Prevent storing of IP
# addresses" is off, as it is by default: a user's address is not a secret to us.
CONFIG = {
    "scrubData": True,
    "scrubDefaults": True,
    "sensitiveFields": [],
    "excludeFields": [],
    "scrubIpAddresses": False,
}


def normalizer():
    # The arguments Sentry's event manager gives it for an event sent with a DSN key.
    return StoreNormalizer(
        project_id=7,
        client_ip="127.0.0.1",
        client="stacktrace",
        key_id="1",
        protocol_version="7",
        is_renormalize=False,
        remove_other=True,
        normalize_user_agent=True,
    )


def metas(meta, path=()):
    """Every (path, meta entry) of a `_meta` tree; the entry of a node is under ""."""
    if not isinstance(meta, dict):
        return
    for key, value in meta.items():
        if key == "":
            yield path, value
        else:
            yield from metas(value, path + (key,))


def value_at(event, path):
    node = event
    for key in path:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list):
            try:
                node = node[int(key)]
            except (ValueError, IndexError):
                return None
        else:
            return None
    return node


def removed_parts(before, after, ranges):
    """The parts of `before` that became the ranges of `after`, matched by the unchanged
    text between them; None where that text does not match."""
    parts = []
    pos = 0
    ranges = sorted(ranges)
    for i, (start, end) in enumerate(ranges):
        kept = after[ranges[i - 1][1] if i else 0 : start]
        if not before.startswith(kept, pos):
            return None
        pos += len(kept)
        nxt = after[end : ranges[i + 1][0]] if i + 1 < len(ranges) else after[end:]
        if i + 1 == len(ranges):
            if not before.endswith(nxt) or len(before) - len(nxt) < pos:
                return None
            stop = len(before) - len(nxt)
        else:
            stop = before.find(nxt, pos) if nxt else -1
            if stop < 0:
                return None
        parts.append(before[pos:stop])
        pos = stop
    return parts


# Words that a rule takes along with the value after them (`@bearer` removes
# "Bearer **********" whole): with our placeholder after them, nothing is disclosed.
SCHEMES = ("bearer", "basic", "token", "digest")

# What Relay's `@password` rule looks for in keys and in text values (the pattern of
# relay-pii), which makes it remove a whole text that names a secret.
KEYWORDS = re.compile(
    r"(?i)(password|secret|passwd|api[-_]key|apikey|auth|credentials|mysql_pwd|privatekey"
    r"|private[-_]key|token[^\s]*[:=]|^otp$|^two[-_]factor$)"
)
# After a keyword: the rest of its name, separators, a scheme, then our placeholder.
AFTER_KEYWORD = re.compile(
    r"[\w-]*[\s\"':=]*(?:(?:%s)\s+)?%s" % ("|".join(SCHEMES), re.escape(PLACEHOLDER)),
    re.IGNORECASE,
)


def only_placeholders(value):
    """Whether a removed value holds nothing but our placeholder (with punctuation, or an
    authorization scheme's name in front of it)."""
    if isinstance(value, str):
        if PLACEHOLDER not in value:
            return False
        rest = "".join(c if c.isalnum() else " " for c in value.replace(PLACEHOLDER, " "))
        return all(word.lower() in SCHEMES for word in rest.split())
    if isinstance(value, list):
        return bool(value) and all(only_placeholders(v) for v in value)
    if isinstance(value, dict):
        return bool(value) and all(only_placeholders(v) for v in value.values())
    return False


def keywords_name_placeholders(value):
    """Whether every secret a text names is our placeholder: each keyword of `@password`
    in it is followed by the placeholder (`password=**********`, `"api_key": "**********"`,
    `Authorization: Bearer **********`). Relay removes such a text whole for naming a
    secret, which it no longer holds."""
    if not isinstance(value, str):
        return False
    found = list(KEYWORDS.finditer(value))
    return bool(found) and all(AFTER_KEYWORD.match(value, m.end()) for m in found)


def normalizer_findings(event, normalized):
    """The normalizer's errors, each once: those of `_meta`, then those of `errors` that
    `_meta` does not hold (errors of the event as a whole)."""
    out = []
    seen = set()
    for path, entry in metas(normalized.get("_meta") or {}):
        for err in entry.get("err") or []:
            rule = err[0] if isinstance(err, list) else err
            seen.add((".".join(path), rule))
            out.append(
                {
                    "kind": "normalizer-error",
                    "path": ".".join(path),
                    "rule": rule,
                    "value": entry.get("val", value_at(event, path)),
                    "detail": err,
                }
            )
    for error in normalized.get("errors") or []:
        path = error.get("name") or ""
        if (path, error.get("type")) in seen:
            continue
        out.append(
            {
                "kind": "normalizer-error",
                "path": path,
                "rule": error.get("type"),
                "value": error.get("value", value_at(event, path.split(".")) if path else None),
                "detail": error,
            }
        )
    return out


def scrub_findings(normalized, scrubbed):
    before_meta = {
        (path, json.dumps(rem))
        for path, entry in metas(normalized.get("_meta") or {})
        for rem in entry.get("rem") or []
    }
    out = []
    for path, entry in metas(scrubbed.get("_meta") or {}):
        new = [
            rem
            for rem in entry.get("rem") or []
            if (path, json.dumps(rem)) not in before_meta
        ]
        if not new:
            continue
        before = value_at(normalized, path)
        after = value_at(scrubbed, path)
        ranged = [r for r in new if len(r) >= 4]
        parts = None
        if ranged and isinstance(before, str) and isinstance(after, str):
            parts = removed_parts(before, after, [(r[2], r[3]) for r in ranged])
        for rem in new:
            removed = before
            if parts is not None and rem in ranged:
                removed = parts[ranged.index(rem)]
            finding = {
                "kind": "scrubbed",
                "path": ".".join(path),
                "rule": rem[0],
                "value": before,
                "removed": removed,
            }
            if only_placeholders(removed):
                finding.update(kind="allowed", why="only our placeholder")
            elif rem[0].startswith("@password") and keywords_name_placeholders(removed):
                finding.update(kind="allowed", why="names a secret that is our placeholder")
            out.append(finding)
    return out


def check(event, config, store):
    if not isinstance(event, dict):
        return [{"kind": "normalizer-error", "path": "", "rule": "not an object", "value": event}]
    normalized = store.normalize_event(event)
    findings = normalizer_findings(event, normalized)
    scrubbed = pii_strip_event(config, normalized)
    findings += scrub_findings(normalized, scrubbed)
    return findings


def main():
    if len(sys.argv) != 2:
        print("usage: relay_check.py FILE  (events, one JSON object a line)", file=sys.stderr)
        return 2
    config = convert_datascrubbing_config(CONFIG)
    if not isinstance(config, dict):
        print(f"relay refused the data scrubbing config: {config}", file=sys.stderr)
        return 1
    store = normalizer()
    events = []
    with open(sys.argv[1], encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            event = json.loads(line)
            findings = check(event, config, store)
            event_id = event.get("event_id") if isinstance(event, dict) else None
            events.append({"line": n, "event_id": event_id, "findings": findings})
    json.dump({"events": events}, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
