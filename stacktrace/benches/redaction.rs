//! Redaction of large events as the writer builds them (`event_from_pending` with the
//! settings `install` makes from a default `Config`), in the calling thread's CPU time,
//! which leaves out what other programs on the machine take from it.
//!
//! The baseline of each case, measured in the same run, is the same event built the same
//! way from texts of the same sizes in which redaction has nothing to find: each `=` is
//! written as `-`, each secret name (of a pair or an argument) as an ordinary name of the
//! same length, and each value as another of the same length, so that no value a redacted
//! build hid is ever in a baseline's text. It still pays for the build, the cheap test of
//! every text and the checks of every name, so the ratio is what finding, hiding and
//! scrubbing the secrets costs.
//!
//! - `large event`: a 64 KiB body (`extra`) of `name=value` pairs, one in eight named as
//!   a secret, 50 arguments of one `#[capture]` function (ten named as secrets, the others
//!   quoting some of the body's secrets), a 4 KiB message of pairs.
//! - `body size`: only a body of the same shape, 8, 32, 128 and 512 KiB (its throughput is
//!   the time per KiB, which should not grow with the size).
//! - `many secrets`: the large event with a body of 4,500 distinct `password=<random>`
//!   pairs, each value then scrubbed from every other text of the event.
//!
//! `cargo bench -p stacktrace --bench redaction -- --warm-up-time 1 --measurement-time 3`.
//! `STACKTRACE_BENCH_BODY_KIB` sets the body of the large event (64),
//! `STACKTRACE_BENCH_SIZES_KIB` the sizes of `body size` (`8,32,128,512`) and
//! `STACKTRACE_BENCH_SECRETS` the pairs of `many secrets` (4500).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use stacktrace::__private::bench::Build;

#[path = "support/clocks.rs"]
mod clocks;

use clocks::ThreadCpu;

/// Names of ordinary pairs.
const ORDINARY: [&str; 7] = [
    "user_id", "page", "sort", "locale", "quantity", "currency", "referrer",
];
/// Names of secret pairs (the default `redact_fields` are `password` and `token`), each
/// with the ordinary name of the same length that the baseline writes instead.
const SECRET: [(&str, &str); 4] = [
    ("password", "postcode"),
    ("api_token", "api_level"),
    ("new_password", "new_postcode"),
    ("refresh_token", "refresh_delay"),
];

/// A small, fixed pseudo-random source (splitmix64), so that every run builds the same
/// texts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Small letters and digits, as a token or a generated password is. No capitals, so
    /// that no word has the shape of an IBAN (two capitals of a country, two digits), which
    /// redaction hides whatever names it, in a baseline's text too.
    fn word(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len())]))
            .collect()
    }
}

/// The texts of one event: with secrets to find, or the baseline's, of the same sizes.
#[derive(Clone, Default)]
struct Texts {
    message: String,
    body: String,
    args: Vec<(String, String)>,
}

/// Pairs of each form: `name=value` with secrets, `name-other` (an ordinary name in place
/// of a secret one, another value of the same length) in the baseline.
#[derive(Default)]
struct Twins {
    secret: String,
    plain: String,
    /// The values of the secret pairs, for other texts to quote.
    values: Vec<String>,
    /// The baseline's values in their place.
    plain_values: Vec<String>,
}

impl Twins {
    fn pair(&mut self, rng: &mut Rng, name: (&str, &str), len: usize, secret: bool) {
        let value = rng.word(len);
        let other = rng.word(len);
        for (text, name, sep, value) in [
            (&mut self.secret, name.0, '=', &value),
            (&mut self.plain, name.1, '-', &other),
        ] {
            if !text.is_empty() {
                text.push('&');
            }
            text.push_str(name);
            text.push(sep);
            text.push_str(value);
        }
        if secret {
            self.values.push(value);
            self.plain_values.push(other);
        }
    }

    /// A value of a secret pair and the baseline's in its place; two random words of
    /// `len` when there is none.
    fn quote(&self, rng: &mut Rng, len: usize) -> (String, String) {
        match self.values.len() {
            0 => (rng.word(len), rng.word(len)),
            n => {
                let i = rng.below(n);
                (self.values[i].clone(), self.plain_values[i].clone())
            }
        }
    }
}

/// `name=value` pairs joined by `&` up to `bytes`, one in eight named as a secret.
fn mixed_pairs(rng: &mut Rng, bytes: usize) -> Twins {
    let mut t = Twins::default();
    while t.secret.len() < bytes {
        if rng.below(8) == 0 {
            let name = SECRET[rng.below(SECRET.len())];
            t.pair(rng, name, 20, true);
        } else {
            let name = ORDINARY[rng.below(ORDINARY.len())];
            let len = 4 + rng.below(12);
            t.pair(rng, (name, name), len, false);
        }
    }
    t
}

/// `count` pairs `password=<random>`, each value distinct.
fn password_pairs(rng: &mut Rng, count: usize) -> Twins {
    let mut t = Twins::default();
    // Sixteen random letters and digits: distinct but for a chance of 36^-16 per two.
    for _ in 0..count {
        t.pair(rng, SECRET[0], 16, true);
    }
    t
}

/// The large event around `body`: a 4 KiB message of pairs and 50 arguments, ten named as
/// secrets, the others a `Debug` text quoting one of the body's secrets.
fn large_event(rng: &mut Rng, mut body: Twins) -> (Texts, Texts) {
    let message = mixed_pairs(rng, 4096);
    let mut secret = Texts {
        message: format!("checkout failed: {}", message.secret),
        body: std::mem::take(&mut body.secret),
        args: Vec::new(),
    };
    let mut plain = Texts {
        message: format!("checkout failed: {}", message.plain),
        body: std::mem::take(&mut body.plain),
        args: Vec::new(),
    };
    for i in 0..50 {
        if i % 5 == 0 {
            let (name, ordinary) = SECRET[i / 5 % SECRET.len()];
            secret
                .args
                .push((format!("{name}_{i}"), format!("{:?}", rng.word(24))));
            plain
                .args
                .push((format!("{ordinary}_{i}"), format!("{:?}", rng.word(24))));
        } else {
            let (quoted, other) = body.quote(rng, 20);
            let (id, user) = (rng.below(100_000), rng.word(8));
            let items = (0..8)
                .map(|_| format!("Item {{ sku: {:?} }}", rng.word(10)))
                .collect::<Vec<_>>()
                .join(", ");
            let order = |card: &str| {
                format!("Order {{ id: {id}, user: {user:?}, card: {card:?}, items: [{items}] }}")
            };
            let name = format!("order_{i}");
            secret.args.push((name.clone(), order(&quoted)));
            plain.args.push((name, order(&other)));
        }
    }
    (secret, plain)
}

/// Only a body.
fn body_only(body: Twins) -> (Texts, Texts) {
    let texts = |body| Texts {
        body,
        ..Texts::default()
    };
    (texts(body.secret), texts(body.plain))
}

fn build(settings: Build, texts: Texts) -> stacktrace::CrashEvent {
    settings.event(
        texts.message,
        vec![("request_body".to_owned(), texts.body)],
        texts.args,
    )
}

/// Times the build of `secret` against `plain` in `group`, under `label`.
fn compare(
    group: &mut criterion::BenchmarkGroup<'_, ThreadCpu>,
    settings: Build,
    label: &str,
    (secret, plain): &(Texts, Texts),
) {
    for (name, texts) in [
        (format!("{label}, nothing to find (baseline)"), plain),
        (format!("{label}, redacted"), secret),
    ] {
        // Each case starts with nothing remembered from the cases before it; the redacted
        // case remembers its own values at its first build, as a process would.
        Build::forget_remembered();
        group.bench_function(name, |b| {
            b.iter_batched(
                || texts.clone(),
                |t| black_box(build(settings, t)),
                BatchSize::LargeInput,
            )
        });
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn redaction(c: &mut Criterion<ThreadCpu>) {
    let settings = Build::new(&stacktrace::Config::default().capture_env(false));
    let mut rng = Rng(0x5eed);

    // The built events hold what redaction left, checked once before timing.
    let check = |(secret, plain): &(Texts, Texts), hidden: &[String]| {
        let redacted = serde_json::to_string(&build(settings, secret.clone())).unwrap();
        assert!(redacted.contains(stacktrace::PLACEHOLDER));
        assert!(hidden.iter().all(|h| !redacted.contains(h.as_str())));
        let built = serde_json::to_string(&build(settings, plain.clone())).unwrap();
        assert!(!built.contains(stacktrace::PLACEHOLDER));
    };

    let kib: usize = env_or("STACKTRACE_BENCH_BODY_KIB", 64);
    let body = mixed_pairs(&mut rng, kib * 1024);
    let hidden = body.values.clone();
    let event = large_event(&mut rng, body);
    check(&event, &hidden);
    let mut group = c.benchmark_group("large event");
    group.sample_size(10);
    compare(&mut group, settings, &format!("{kib} KiB body"), &event);
    group.finish();

    let sizes: Vec<usize> = env_or("STACKTRACE_BENCH_SIZES_KIB", "8,32,128,512".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut group = c.benchmark_group("body size");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for kib in sizes {
        let body = mixed_pairs(&mut rng, kib * 1024);
        let hidden = body.values.clone();
        let event = body_only(body);
        check(&event, &hidden);
        group.throughput(Throughput::Bytes(event.0.body.len() as u64));
        compare(&mut group, settings, &format!("{kib} KiB"), &event);
    }
    group.finish();

    let count: usize = env_or("STACKTRACE_BENCH_SECRETS", 4500);
    let body = password_pairs(&mut rng, count);
    let hidden = body.values.clone();
    let event = large_event(&mut rng, body);
    check(&event, &hidden);
    let mut group = c.benchmark_group("many secrets");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    compare(
        &mut group,
        settings,
        &format!("{count} password pairs"),
        &event,
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ThreadCpu)
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = redaction
}
criterion_main!(benches);
