//! Secrets in the forms people write them in free text: named pairs quoted or not, with `:`
//! or `=`, as JSON (also escaped) and as a derived `Debug` prints a struct or a map; a URL
//! whose user alone is the credential; every scheme after `Authorization:`, keys after
//! `Token` or `ApiKey`, AWS signatures; URLs percent-encoded or with JSON's escaped slashes;
//! card numbers, IBANs, social security numbers and PEM keys. Whether a message, an error,
//! a `#[capture]` argument, a panic or a breadcrumb holds them, none reaches the stored
//! events or the database files, and the ordinary text around them is kept.

mod support;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use stacktrace::{add_breadcrumb, capture, Breadcrumb, Config, CrashEvent, Level, PLACEHOLDER};
use stacktrace_tests::{contains, raw_bytes};
use support::install::{install_once, Installed};

/// One runtime for this test binary (the install is process-global).
fn installed() -> &'static Installed {
    install_once(|| {
        Config::default().capture_env(false).redact_fields([
            "password",
            "token",
            "secret",
            "signature",
            "credential",
        ])
    })
}

/// Digits that differ from run to run, so that no secret is written in this file (whose
/// lines an event may quote around a panic's frames).
fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:012}", nanos % 1_000_000_000_000)
}

/// `digits` followed by the digit that makes them pass the Luhn check.
fn with_luhn_digit(digits: &str) -> String {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            match (i % 2 == 0, d * 2) {
                (true, twice) if twice > 9 => twice - 9,
                (true, twice) => twice,
                (false, _) => d,
            }
        })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

/// A German IBAN for an account of 18 digits, with its check digits.
fn german_iban(account: &str) -> String {
    // The account, then `DE00` with its letters as numbers, modulo 97.
    let remainder = format!("{account}131400")
        .bytes()
        .fold(0u32, |r, d| (r * 10 + u32::from(d - b'0')) % 97);
    format!("DE{:02}{account}", 98 - remainder)
}

#[derive(Debug)]
struct LoginForm {
    user: String,
    password: String,
}

#[capture]
fn login(form: &LoginForm, headers: &BTreeMap<&str, String>) -> Result<(), String> {
    if form.user.is_empty() || form.password.is_empty() {
        return Ok(());
    }
    Err(format!(
        "rejected {form:#?} with {} headers",
        headers.len().max(1)
    ))
}

/// The texts of an event that hold what the program wrote.
fn texts(e: &CrashEvent) -> Vec<String> {
    let mut out = vec![e.message.clone()];
    out.extend(e.sources.iter().cloned());
    for call in &e.calls {
        out.extend(call.args.iter().map(|a| a.value.clone()));
    }
    for crumb in &e.breadcrumbs {
        out.push(crumb.message.clone());
        out.extend(
            crumb
                .data
                .values()
                .map(|v| v.as_str().unwrap_or_default().to_owned()),
        );
    }
    out
}

// Regression: only `name=value` pairs, `user:pass@` URLs and `Bearer`/`Basic`/`Digest`
// values were hidden in free text: quoted values, `name: value`, JSON in text (also
// escaped), derived `Debug`, a URL's user alone, `Authorization: Token ...` and other
// schemes, keys after `ApiKey`, AWS signatures, percent-encoded or JSON-escaped URLs, card
// numbers, IBANs, social security numbers and PEM keys were stored as they were.
#[test]
fn every_form_of_a_secret_is_hidden_and_the_text_around_it_kept() {
    let i = installed();
    let n = nonce();
    let s = |prefix: &str| format!("{prefix}{n}");
    let card = with_luhn_digit(&format!("4{}00", &n[..12]));
    let other_card = with_luhn_digit(&format!("35{}9", &n[..12]));
    let other_card_grouped = other_card
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let iban = german_iban(&format!("370400{}", &n[..12]));
    let ssn = format!("{}-{}-{}", &n[..3], &n[3..5], &n[5..9]);
    let pem_body = format!("MIIEow{n}AKCAQEA");

    // Messages: named pairs in every form, with the controls that must stay.
    let pairs = format!(
        "login failed: password=\"{}\" user=\"ann\" at 12:30, password='{}' password: {} \
         password = {}; see https://example.com/path for order 12345 (ref 1234567812345678) \
         via auth::login",
        s("pwq"),
        s("pws"),
        s("pwc"),
        s("pwe")
    );
    stacktrace::capture_message(&pairs, Level::Error).expect("kept");
    let json = format!(
        r#"body {{"password": "{}\"{}", "user": "ann"}} and {{"password":"{}"}} escaped "{{\"password\":\"{}\"}}""#,
        s("js"),
        s("tail"),
        s("jc"),
        s("jx")
    );
    stacktrace::capture_message(&json, Level::Error).expect("kept");

    // An error: authentication schemes and signatures.
    let error = std::io::Error::other(format!(
        "upstream refused Authorization: Token {} and Proxy-Authorization: ApiKey {}; \
         retried with ApiKey {} and Bearer {}!$(x) on https://example.com/path?\
         X-Amz-Signature={}&X-Amz-Credential={}%2F20240101&X-Amz-Date=20240101\n\
         Authorization: AWS4-HMAC-SHA256 Credential={}/x, SignedHeaders=host, Signature={}",
        s("tk0a"),
        s("ak0b"),
        s("key0c"),
        s("br"),
        s("sig"),
        s("AKIA"),
        s("AKIB"),
        s("hmac")
    ));
    stacktrace::capture_error(&error).expect("kept");

    // Breadcrumbs, then a message they are stored with: URLs with a user alone, escaped.
    add_breadcrumb(
        Breadcrumb::new(
            Level::Info,
            "http",
            format!(
                "GET https://ghp_{}@github.com/x with dsn https://{}@o1.ingest.sentry.io/1",
                s("gh"),
                s("pk")
            ),
        )
        .with_data(
            "next",
            format!("redirect=https%3A%2F%2Fann%3A{}%40db%2Fapp", s("enc")),
        ),
    );
    add_breadcrumb(Breadcrumb::new(
        Level::Info,
        "json",
        format!(r#"{{"next":"https:\/\/bob:{}@db.internal\/x"}}"#, s("jsu")),
    ));
    stacktrace::capture_message("after the breadcrumbs at 12:30", Level::Warning).expect("kept");

    // A `#[capture]` call: a struct and a map as a derived `Debug` prints them.
    let form = LoginForm {
        user: "ann".into(),
        password: s("dbg"),
    };
    let headers = BTreeMap::from([("password", s("map")), ("user", "ann".to_owned())]);
    assert!(login(&form, &headers).is_err());

    // A panic: values of a secret's shape.
    let message = format!(
        "charge failed for card {card} (also {other_card_grouped}), iban {iban}, ssn {ssn}, \
         order 12345 ref 1234567812345678\n-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n\
         -----END RSA PRIVATE KEY-----"
    );
    let panicked = std::thread::Builder::new()
        .name("redaction-forms".into())
        .spawn(move || panic!("{message}"))
        .expect("spawn")
        .join();
    assert!(panicked.is_err());

    assert!(i.guard.flush());
    let store = stacktrace::store().expect("a store");
    let events = store.query().limit(100).all().expect("query");
    assert_eq!(events.len(), 6, "{events:#?}");
    let secrets = [
        s("pwq"),
        s("pws"),
        s("pwc"),
        s("pwe"),
        s("js"),
        s("tail"),
        s("jc"),
        s("jx"),
        s("tk0a"),
        s("ak0b"),
        s("key0c"),
        s("br"),
        s("sig"),
        s("AKIA"),
        s("AKIB"),
        s("hmac"),
        s("gh"),
        s("pk"),
        s("enc"),
        s("jsu"),
        s("dbg"),
        s("map"),
        card.clone(),
        other_card.clone(),
        other_card_grouped.clone(),
        iban.clone(),
        ssn.clone(),
        pem_body.clone(),
    ];
    let stored: Vec<String> = events.iter().flat_map(texts).collect();
    let all = serde_json::to_string(&events).expect("events as JSON");
    for secret in &secrets {
        assert!(
            !all.contains(secret.as_str()),
            "{secret} is stored: {stored:#?}"
        );
    }
    // What is not a secret is kept, and the placeholder shows where one was.
    let joined = stored.join("\n");
    for control in [
        "user=\"ann\" at 12:30".to_owned(),
        "see https://example.com/path for order 12345 (ref 1234567812345678) via auth::login"
            .to_owned(),
        format!("password=\"{PLACEHOLDER}\""),
        format!("password='{PLACEHOLDER}' password: {PLACEHOLDER} password = {PLACEHOLDER};"),
        format!(r#"{{"password": "{PLACEHOLDER}", "user": "ann"}}"#),
        format!(r#"{{"password":"{PLACEHOLDER}"}}"#),
        format!(r#"{{\"password\":\"{PLACEHOLDER}\"}}"#),
        format!("Authorization: Token {PLACEHOLDER}"),
        format!("Proxy-Authorization: ApiKey {PLACEHOLDER}"),
        format!("ApiKey {PLACEHOLDER} and Bearer {PLACEHOLDER}) on https://example.com/path?"),
        format!("X-Amz-Signature={PLACEHOLDER}&X-Amz-Credential={PLACEHOLDER}&X-Amz-Date=20240101"),
        format!("Authorization: AWS4-HMAC-SHA256 {PLACEHOLDER}"),
        format!("GET https://{PLACEHOLDER}@github.com/x"),
        format!("https://{PLACEHOLDER}@o1.ingest.sentry.io/1"),
        format!("redirect=https%3A%2F%2Fann%3A{PLACEHOLDER}%40db%2Fapp"),
        format!(r#"https:\/\/bob:{PLACEHOLDER}@db.internal\/x"#),
        format!("LoginForm {{ user: \"ann\", password: \"{PLACEHOLDER}\" }}"),
        format!("    user: \"ann\",\n    password: \"{PLACEHOLDER}\","),
        format!(r#"{{"password": "{PLACEHOLDER}", "user": "ann"}}"#),
        format!("card {PLACEHOLDER} (also {PLACEHOLDER}), iban {PLACEHOLDER}, ssn {PLACEHOLDER}"),
        "order 12345 ref 1234567812345678".to_owned(),
        format!("-----BEGIN RSA PRIVATE KEY-----\n{PLACEHOLDER}\n-----END RSA PRIVATE KEY-----"),
    ] {
        assert!(
            joined.contains(&control),
            "{control:?} is not in {stored:#?}"
        );
    }

    // Nor are they in any byte of the database.
    store.flush().expect("flush to disk");
    let bytes = raw_bytes(&i.dir);
    for secret in &secrets {
        assert!(!contains(&bytes, secret.as_bytes()), "{secret} is on disk");
    }
    // Meaningful only if the events are in the files at all.
    for control in [
        "at 12:30",
        "https://example.com/path",
        "1234567812345678",
        "auth::login",
    ] {
        assert!(
            contains(&bytes, control.as_bytes()),
            "{control} is not on disk"
        );
    }
}
