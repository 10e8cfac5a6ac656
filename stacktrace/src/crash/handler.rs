//! The fatal-signal handler: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT and SIGTRAP, on an
//! alternate signal stack (so that a stack overflow can be written down), through the
//! `crash-handler` crate. It writes the crash into this process's record, then the crate
//! puts back the handlers that were there before and raises the signal again: a handler
//! the program or another library installed still runs (std's stack-overflow message
//! still prints), and the process ends with the status it would have had.

use std::sync::OnceLock;

use crate::crash::recorder::{recorder, CrashWrite, EachAddress};

static HANDLER: OnceLock<Option<crash_handler::CrashHandler>> = OnceLock::new();

/// Installs the handler, once per process; `Err` says why it could not be.
pub(crate) fn install() -> Result<(), String> {
    // The unwinder reads the modules' unwind tables on first use, taking the loader's lock
    // and allocating: done now, so that the handler finds them ready.
    backtrace::trace(|_| false);
    let mut failed = None;
    HANDLER.get_or_init(|| {
        // SAFETY: the closure runs in a signal handler. It allocates nothing and takes no
        // lock: it reads the crash context it is given, the thread's name (`prctl`) and
        // the clock (`clock_gettime`), walks the stack with the unwinder made ready above,
        // and stores plain words into the mapped record.
        #[allow(unsafe_code)]
        let event = unsafe { crash_handler::make_crash_event(on_crash) };
        match crash_handler::CrashHandler::attach(event) {
            Ok(h) => Some(h),
            Err(e) => {
                failed = Some(format!(
                    "the fatal-signal handler could not be installed: {e}"
                ));
                None
            }
        }
    });
    match failed {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

fn on_crash(cx: &crash_handler::CrashContext) -> crash_handler::CrashEventResult {
    if let Some(r) = recorder() {
        let (sp, pc) = stack_and_instruction(cx);
        let mut name = [0u8; 16];
        // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer it is given, which
        // has 16.
        #[allow(unsafe_code)]
        let named = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) } == 0;
        // The main thread bears the program's name; std calls it `main`.
        let thread_name: &[u8] = if cx.tid == cx.pid {
            b"main"
        } else if named {
            &name
        } else {
            &[]
        };
        let walk = |each: &mut EachAddress<'_>| {
            // SAFETY: another thread may be unwinding at the same time: the unwinder
            // itself is safe to call so (it keeps no state of its own but its caches,
            // filled at install); the lock `trace` would take may be held by the
            // crashed thread.
            #[allow(unsafe_code)]
            unsafe {
                backtrace::trace_unsynchronized(|frame| each(frame.ip() as usize));
            }
        };
        r.write_crash(&CrashWrite {
            signal: cx.siginfo.ssi_signo as i32,
            code: cx.siginfo.ssi_code,
            fault: fault_address(&cx.siginfo),
            tid: cx.tid as u64,
            sp,
            pc,
            time_us: now_us_signal_safe(),
            thread_name,
            // A read of a thread-local counter that needs no initialising.
            panicking: std::thread::panicking(),
            walk: &walk,
        });
    }
    // Not handled: the crate restores the previous handlers and the signal is raised again.
    crash_handler::CrashEventResult::Handled(false)
}

/// The fault address of a SIGSEGV, SIGBUS, SIGILL or SIGFPE. The crate copies the kernel's
/// `siginfo_t` into a `signalfd_siginfo` byte for byte, and the two lay out their fields
/// differently: `si_addr` (the union at offset 16 of a 64-bit `siginfo_t`) lands on
/// `ssi_uid` and `ssi_fd`, its low half first on a little-endian machine.
fn fault_address(info: &libc::signalfd_siginfo) -> u64 {
    if cfg!(all(target_pointer_width = "64", target_endian = "little")) {
        u64::from(info.ssi_uid) | (u64::from(info.ssi_fd as u32) << 32)
    } else {
        0
    }
}

/// The interrupted thread's stack pointer and instruction pointer.
fn stack_and_instruction(cx: &crash_handler::CrashContext) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        let g = &cx.context.uc_mcontext.gregs;
        (
            g.get(libc::REG_RSP as usize).map_or(0, |v| *v as u64),
            g.get(libc::REG_RIP as usize).map_or(0, |v| *v as u64),
        )
    }
    #[cfg(target_arch = "aarch64")]
    {
        (cx.context.uc_mcontext.sp, cx.context.uc_mcontext.pc)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = cx;
        (0, 0)
    }
}

/// The time, through `clock_gettime`, which is async-signal-safe.
fn now_us_signal_safe() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    #[allow(unsafe_code)]
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } == 0;
    if ok {
        (ts.tv_sec as u64)
            .saturating_mul(1_000_000)
            .saturating_add(ts.tv_nsec as u64 / 1000)
    } else {
        0
    }
}
