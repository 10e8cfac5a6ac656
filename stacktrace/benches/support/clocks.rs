//! Clocks for the capture benchmarks: wall time, and a criterion measurement of the calling
//! thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), which is what a capture costs the thread
//! that makes it, without the time other threads (the writer, the database's flusher, other
//! programs) take from it on a busy machine.

use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::Throughput;

/// Reads a clock: wall time or the thread's CPU time.
pub trait Clock: Measurement<Value = Duration> + 'static {
    const NAME: &'static str;
    fn now() -> Duration;
}

impl Clock for WallTime {
    const NAME: &'static str = "wall time";
    fn now() -> Duration {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed()
    }
}

impl Clock for ThreadCpu {
    const NAME: &'static str = "thread CPU time";
    fn now() -> Duration {
        thread_cpu_now()
    }
}

/// Times `each` `iters` times on clock `C`, in batches of `batch`, running `between`
/// untimed after each batch.
pub fn batched<C: Clock>(
    iters: u64,
    batch: u64,
    mut each: impl FnMut(),
    between: impl Fn(),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(batch);
        let start = C::now();
        for _ in 0..n {
            each();
        }
        total += C::now() - start;
        between();
        left -= n;
    }
    total
}

/// Times, on clock `C` and under `label`, a `capture_error` (`capture`, in batches of 2,000)
/// and a caught panic (`panic`, in batches of 200), running `between` untimed after each
/// batch: a half of the capture benches that compare a setting on and off.
// Each bench includes this file; only some time captures this way.
#[allow(dead_code)]
pub fn captures_and_panics<C: Clock>(
    c: &mut criterion::Criterion<C>,
    label: &str,
    capture: impl Fn(),
    panic: impl Fn(),
    between: impl Fn(),
) {
    for (name, batch, each) in [
        ("capture_error", 2_000, &capture as &dyn Fn()),
        ("panic", 200, &panic as &dyn Fn()),
    ] {
        let mut group = c.benchmark_group(format!("{name}, {}", C::NAME));
        group.bench_function(label, |b| {
            b.iter_custom(|iters| batched::<C>(iters, batch, each, &between))
        });
        group.finish();
    }
}

/// The CPU time the calling thread has used so far.
pub fn thread_cpu_now() -> Duration {
    cpu_now(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The CPU time a CPU-time clock (`CLOCK_THREAD_CPUTIME_ID`, `CLOCK_PROCESS_CPUTIME_ID`)
/// reads now.
#[allow(unsafe_code)]
pub fn cpu_now(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call, and both
    // CPU-time clocks exist on every supported platform of these benches.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime({clock})");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A criterion measurement that reads a CPU-time clock.
macro_rules! cpu_measurement {
    ($(#[$doc:meta])* $name:ident, $clock:expr) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $name;

        impl Measurement for $name {
            type Intermediate = Duration;
            type Value = Duration;

            fn start(&self) -> Duration {
                cpu_now($clock)
            }

            fn end(&self, start: Duration) -> Duration {
                cpu_now($clock).saturating_sub(start)
            }

            fn add(&self, a: &Duration, b: &Duration) -> Duration {
                *a + *b
            }

            fn zero(&self) -> Duration {
                Duration::ZERO
            }

            fn to_f64(&self, value: &Duration) -> f64 {
                value.as_nanos() as f64
            }

            fn formatter(&self) -> &dyn ValueFormatter {
                &CpuFormatter
            }
        }
    };
}

cpu_measurement!(
    /// The calling thread's CPU time, for `Criterion::with_measurement`.
    ThreadCpu,
    libc::CLOCK_THREAD_CPUTIME_ID
);
cpu_measurement!(
    /// The process's CPU time, every thread's, for `Criterion::with_measurement`.
    // Each bench includes this file; only some measure the process.
    #[allow(dead_code)]
    ProcessCpu,
    libc::CLOCK_PROCESS_CPUTIME_ID
);

/// Formats nanoseconds of CPU time like criterion formats wall time.
struct CpuFormatter;

impl CpuFormatter {
    fn unit(ns: f64) -> (f64, &'static str) {
        if ns < 1e3 {
            (1.0, "ns")
        } else if ns < 1e6 {
            (1e-3, "µs")
        } else if ns < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        }
    }
}

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = Self::unit(typical_ns);
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        typical_ns: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (per_iter, unit) = match throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (*n as f64, "B/s (CPU)"),
            Throughput::Elements(n) => (*n as f64, "elem/s (CPU)"),
        };
        let _ = typical_ns;
        values
            .iter_mut()
            .for_each(|v| *v = per_iter * 1e9 / v.max(f64::MIN_POSITIVE));
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
