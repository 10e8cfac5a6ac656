//! The fatal-signal handler: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT and SIGTRAP, on an
//! alternate signal stack (so that a stack overflow can be written down), installed with
//! `sigaction`. It never calls `prctl` to change what others may do to the process (core
//! dumps, tracing): a process that made itself undumpable stays so while it crashes.
//!
//! A handler that was there before (std's, a runtime's that recovers from its own faults)
//! is called first, as if it had been the only one: a signal it recovers from (it returns
//! with the fault mended, or jumps away with `siglongjmp`) is no crash, and leaves the
//! record as it was and this handler armed. Only when it gives the signal up (it sets
//! another action and returns, so that the instruction faults again under it) is the crash
//! written, before the process goes on to die as it would have. A signal with no handler
//! before is written down, then its default action is put back and it runs again.
//!
//! A stack overflow is written first, before the handler that was there runs: the alternate
//! stack std gives its threads holds one signal frame but not two, and std's handler aborts
//! on an overflow. The handlers that were there before are put back for it, and ours again
//! if that handler returns having mended it (then the record is put back as it was); one
//! that jumps away from an overflow leaves it recorded as a crash, and this handler off.

use std::sync::OnceLock;

use crate::crash::recorder::{recorder, CrashWrite, EachAddress};
use crate::crash::report::looks_like_stack_overflow;

/// The signals handled, in the order of [`PREVIOUS`].
const SIGNALS: [libc::c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGTRAP,
];

/// The actions that were there before, set once before the handler is: the handler only
/// reads them.
static PREVIOUS: OnceLock<[libc::sigaction; 6]> = OnceLock::new();
/// Whether the handler was installed; `Err` says why not.
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Installs the handler, once per process; `Err` says why it could not be.
pub(crate) fn install() -> Result<(), String> {
    INSTALLED
        .get_or_init(|| {
            // The unwinder reads the modules' unwind tables on first use, taking the
            // loader's lock and allocating: done now, so that the handler finds them ready.
            backtrace::trace(|_| false);
            crate::crash::altstack::give_this_thread();
            arm().map_err(|e| format!("the fatal-signal handler could not be installed: {e}"))
        })
        .clone()
}

/// Whether the handler is installed.
pub(crate) fn is_installed() -> bool {
    matches!(INSTALLED.get(), Some(Ok(())))
}

fn arm() -> std::io::Result<()> {
    let mut previous = [empty_action(); 6];
    for (sig, old) in SIGNALS.into_iter().zip(previous.iter_mut()) {
        // SAFETY: reading a signal's action into a valid struct.
        #[allow(unsafe_code)]
        if unsafe { libc::sigaction(sig, std::ptr::null(), old) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    if PREVIOUS.set(previous).is_err() {
        return Err(std::io::Error::other("installed twice"));
    }
    set_ours()
}

fn empty_action() -> libc::sigaction {
    // SAFETY: all zeroes is a valid sigaction: SIG_DFL, no flags, an empty mask.
    #[allow(unsafe_code)]
    unsafe {
        std::mem::zeroed()
    }
}

/// Sets this handler for every signal: on the alternate stack, with the other five
/// blocked while it runs.
fn set_ours() -> std::io::Result<()> {
    let mut ours = empty_action();
    ours.sa_sigaction = on_signal as *const () as usize;
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    for sig in SIGNALS {
        // SAFETY: `ours.sa_mask` is a valid set to add to.
        #[allow(unsafe_code)]
        unsafe {
            libc::sigaddset(&mut ours.sa_mask, sig);
        }
    }
    for sig in SIGNALS {
        // SAFETY: installing a valid action whose handler is a C-ABI function.
        #[allow(unsafe_code)]
        if unsafe { libc::sigaction(sig, &ours, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Puts back the actions that were there before, for every signal.
fn set_previous(previous: &[libc::sigaction; 6]) {
    for (sig, old) in SIGNALS.into_iter().zip(previous) {
        // SAFETY: an action read from the kernel, given back.
        #[allow(unsafe_code)]
        unsafe {
            libc::sigaction(sig, old, std::ptr::null_mut());
        }
    }
}

/// Whether this handler is still the action for `sig`.
fn still_ours(sig: libc::c_int) -> bool {
    let mut now = empty_action();
    // SAFETY: reading a signal's action into a valid struct.
    #[allow(unsafe_code)]
    let read = unsafe { libc::sigaction(sig, std::ptr::null(), &mut now) } == 0;
    read && now.sa_sigaction == on_signal as *const () as usize
}

/// What the kernel told of a signal, read in the handler.
#[derive(Clone, Copy)]
struct Caught {
    signal: libc::c_int,
    code: libc::c_int,
    /// The faulting address of a fault (not of a signal sent with `kill` or `raise`).
    fault: u64,
    sp: u64,
    pc: u64,
}

impl Caught {
    /// Sent by a process (`kill`, `raise`, `abort`) rather than caused by an instruction:
    /// it does not come again by itself.
    fn sent(&self) -> bool {
        self.code <= 0 || self.signal == libc::SIGABRT
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: `__errno_location` gives this thread's errno, which the handler keeps for the
    // code it interrupted.
    #[allow(unsafe_code)]
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    #[allow(unsafe_code)]
    let saved = unsafe { *errno };
    handle(sig, info, uc);
    // SAFETY: as above.
    #[allow(unsafe_code)]
    unsafe {
        *errno = saved
    };
}

fn handle(sig: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let Some((previous, all)) = SIGNALS
        .iter()
        .position(|s| *s == sig)
        .and_then(|i| Some((PREVIOUS.get()?.get(i).copied()?, PREVIOUS.get()?)))
    else {
        return;
    };
    let caught = caught(sig, info, uc);
    let handler = previous.sa_sigaction;
    let is_function = handler != libc::SIG_DFL && handler != libc::SIG_IGN;
    if !is_function {
        if handler == libc::SIG_IGN && caught.sent() {
            // Ignored, as it would have been.
            return;
        }
        write(&caught);
        set_previous(all);
        if caught.sent() {
            raise_again(sig);
        }
        // A fault runs its instruction again on return, under the default action.
        return;
    }
    if looks_like_stack_overflow(caught.signal, caught.sp, caught.fault) && caught.code > 0 {
        let was = write(&caught);
        set_previous(all);
        call_previous(&previous, sig, info, uc);
        let mut now = empty_action();
        // SAFETY: reading a signal's action into a valid struct.
        #[allow(unsafe_code)]
        let read = unsafe { libc::sigaction(sig, std::ptr::null(), &mut now) } == 0;
        if read && now.sa_sigaction == handler {
            // It mended the overflow and kept its action: no crash after all.
            let _ = set_ours();
            if let (Some(r), Some(was)) = (recorder(), was) {
                r.unwrite_crash(was);
            }
        }
        return;
    }
    call_previous(&previous, sig, info, uc);
    if still_ours(sig) {
        // It recovered (it returned with the fault mended, or changed where the thread
        // goes on): no crash.
        return;
    }
    // It gave the signal up: the fault comes again, or the sent signal is pending, under
    // the action it set.
    write(&caught);
}

/// Reads the signal's number, code, faulting address and the interrupted thread's stack and
/// instruction pointers.
fn caught(sig: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) -> Caught {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    #[allow(unsafe_code)]
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as u64) };
    let faults = matches!(
        sig,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE
    );
    let (sp, pc) = stack_and_instruction(uc.cast());
    Caught {
        signal: sig,
        code,
        fault: if faults && code > 0 { addr } else { 0 },
        sp,
        pc,
    }
}

/// Calls the action that was there before as the kernel would have: with its mask added to
/// the interrupted thread's, the signal itself blocked unless it asked otherwise, and the
/// default action put back first if it was a one-shot handler.
fn call_previous(
    previous: &libc::sigaction,
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    uc: *mut libc::c_void,
) {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: `uc` is the context the kernel passed to this handler; the sets are valid;
    // `sa_sigaction` is a function (checked by the caller) of the kind its flags say;
    // every call here may be made in a signal handler.
    #[allow(unsafe_code)]
    unsafe {
        let mut mask = (*uc).uc_sigmask;
        for s in 1..=64 {
            if libc::sigismember(&previous.sa_mask, s) == 1 {
                libc::sigaddset(&mut mask, s);
            }
        }
        if previous.sa_flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, sig);
        }
        if previous.sa_flags & libc::SA_RESETHAND != 0 {
            let default = empty_action();
            libc::sigaction(sig, &default, std::ptr::null_mut());
        }
        let mut ours = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, &mut ours);
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(previous.sa_sigaction);
            f(sig, info, uc.cast());
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(previous.sa_sigaction);
            f(sig);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &ours, std::ptr::null_mut());
    }
}

/// Sends the signal to this thread again: pending while the handler runs, delivered under
/// the action put back once it returns.
fn raise_again(sig: libc::c_int) {
    // SAFETY: gettid, getpid and tgkill may be called in a signal handler.
    #[allow(unsafe_code)]
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        if libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) < 0 {
            libc::_exit(128 + sig);
        }
    }
}

/// Writes the crash into this process's record; the record's state before, when this was
/// the first crash written.
fn write(c: &Caught) -> Option<u32> {
    let r = recorder()?;
    // SAFETY: gettid and getpid may be called in a signal handler.
    #[allow(unsafe_code)]
    let (tid, pid) = unsafe { (libc::syscall(libc::SYS_gettid), libc::getpid()) };
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer it is given, which has 16.
    #[allow(unsafe_code)]
    let named = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) } == 0;
    // The main thread bears the program's name; std calls it `main`.
    let thread_name: &[u8] = if tid == libc::c_long::from(pid) {
        b"main"
    } else if named {
        &name
    } else {
        &[]
    };
    let walk = |each: &mut EachAddress<'_>| {
        // SAFETY: another thread may be unwinding at the same time: the unwinder itself is
        // safe to call so (it keeps no state of its own but its caches, filled at install);
        // the lock `trace` would take may be held by the crashed thread.
        #[allow(unsafe_code)]
        unsafe {
            backtrace::trace_unsynchronized(|frame| each(frame.ip() as usize));
        }
    };
    r.write_crash(&CrashWrite {
        signal: c.signal,
        code: c.code,
        fault: c.fault,
        tid: tid as u64,
        sp: c.sp,
        pc: c.pc,
        time_us: now_us_signal_safe(),
        thread_name,
        // A read of a thread-local counter that needs no initialising.
        panicking: std::thread::panicking(),
        walk: &walk,
    })
}

/// The interrupted thread's stack pointer and instruction pointer.
fn stack_and_instruction(uc: *const libc::ucontext_t) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `uc` is the context the kernel passed to the handler.
        #[allow(unsafe_code)]
        let g = unsafe { &(*uc).uc_mcontext.gregs };
        (
            g.get(libc::REG_RSP as usize).map_or(0, |v| *v as u64),
            g.get(libc::REG_RIP as usize).map_or(0, |v| *v as u64),
        )
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let m = unsafe { &(*uc).uc_mcontext };
        (m.sp, m.pc)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = uc;
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
