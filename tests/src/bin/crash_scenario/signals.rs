//! What the crash scenarios do with signals and processes besides the tracker: a SIGSEGV
//! handler of the program's own that recovers from faults on one page, a process that is
//! not dumpable and must stay so, a forked child, a thread made without `std`.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The page whose faults the program's own handler recovers from (0: none yet).
static RECOVERABLE: AtomicUsize = AtomicUsize::new(0);

fn page_size() -> usize {
    // SAFETY: sysconf has no precondition.
    #[allow(unsafe_code)]
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// Writes `text` to stderr with `write`, which a signal handler may call.
fn say_in_handler(text: &[u8]) {
    // SAFETY: writing a valid buffer to a descriptor has no precondition.
    #[allow(unsafe_code)]
    unsafe {
        libc::write(2, text.as_ptr().cast(), text.len());
    }
}

/// Sets `handler` for SIGSEGV, with `SA_SIGINFO`.
fn set_segv_handler(handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void)) {
    // SAFETY: a zeroed sigaction is a valid one with an empty mask; the handler is a plain
    // function with the C ABI.
    #[allow(unsafe_code)]
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// Gives up on a signal as std's own handler does: the default action back, and a return
/// that runs the faulting instruction again.
fn give_up(sig: libc::c_int) {
    // SAFETY: setting a signal's default action has no precondition.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
}

/// A handler like a runtime's that expects some faults (a JIT's null checks, a WebAssembly
/// trap): a fault on the page it knows is mended (the page made readable and writable) and
/// the program goes on; any other fault is not its own, and it gives up.
extern "C" fn recover_on_the_page(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    #[allow(unsafe_code)]
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = RECOVERABLE.load(Ordering::Relaxed);
    if page != 0 && addr >= page && addr < page + page_size() {
        // SAFETY: the page is the one mapped below; mprotect may be called in a handler.
        #[allow(unsafe_code)]
        unsafe {
            libc::mprotect(
                page as *mut c_void,
                page_size(),
                libc::PROT_READ | libc::PROT_WRITE,
            );
        }
        say_in_handler(b"recovered a fault on the page\n");
        return;
    }
    give_up(sig);
}

/// Maps a page nothing may touch, and installs the handler that recovers from faults on it.
pub fn recover_faults_on_one_page() {
    // SAFETY: an anonymous private mapping of one page, with no access.
    #[allow(unsafe_code)]
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_size(),
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    RECOVERABLE.store(page as usize, Ordering::Relaxed);
    set_segv_handler(recover_on_the_page);
}

/// Writes to the page: a fault the program's handler recovers from.
pub fn fault_on_the_page() {
    let p = RECOVERABLE.load(Ordering::Relaxed) as *mut u64;
    // SAFETY: the page is mapped; the write faults once and is resumed once it is mended.
    #[allow(unsafe_code)]
    unsafe {
        std::hint::black_box(p).write_volatile(9);
    }
    // SAFETY: as above, now readable.
    #[allow(unsafe_code)]
    let back = unsafe { p.read_volatile() };
    assert_eq!(back, 9);
    eprintln!("the program went on after the fault");
}

/// Turns core dumps (and tracing by the user's other processes) off, as a program that
/// holds secrets does.
pub fn stop_being_dumpable() {
    // SAFETY: prctl with PR_SET_DUMPABLE takes an integer.
    #[allow(unsafe_code)]
    let status = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    assert_eq!(status, 0);
}

/// A SIGSEGV handler that says whether the process is dumpable while the signal is being
/// handled, then gives up.
extern "C" fn say_dumpable(sig: libc::c_int, _: *mut libc::siginfo_t, _: *mut c_void) {
    // SAFETY: PR_GET_DUMPABLE takes no argument; prctl may be called in a handler.
    #[allow(unsafe_code)]
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    say_in_handler(match dumpable {
        0 => b"dumpable in the handler: 0\n",
        1 => b"dumpable in the handler: 1\n",
        _ => b"dumpable in the handler: other\n",
    });
    give_up(sig);
}

pub fn tell_dumpable_in_handler() {
    set_segv_handler(say_dumpable);
}

/// Installs a seccomp filter that kills the process (SIGSYS) as soon as it calls
/// `prctl(PR_SET_DUMPABLE, ..)` or `prctl(PR_SET_PTRACER, ..)`: anything that makes it
/// dumpable or traceable again, even for a moment, ends it there.
pub fn forbid_dumpable_and_ptracer() {
    const NR: u32 = 0; // offsetof(struct seccomp_data, nr)
    const ARG0: u32 = 16; // offsetof(struct seccomp_data, args[0]), its low half first
    const PR_SET_PTRACER: u32 = 0x5961_6d61;
    // SAFETY: building filter instructions has no precondition.
    #[allow(unsafe_code)]
    let filter = unsafe {
        [
            libc::BPF_STMT((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, NR),
            libc::BPF_JUMP(
                (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                libc::SYS_prctl as u32,
                0,
                3,
            ),
            libc::BPF_STMT((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, ARG0),
            libc::BPF_JUMP(
                (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                libc::PR_SET_DUMPABLE as u32,
                2,
                0,
            ),
            libc::BPF_JUMP(
                (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                PR_SET_PTRACER,
                1,
                0,
            ),
            libc::BPF_STMT(
                (libc::BPF_RET | libc::BPF_K) as u16,
                libc::SECCOMP_RET_ALLOW,
            ),
            libc::BPF_STMT(
                (libc::BPF_RET | libc::BPF_K) as u16,
                libc::SECCOMP_RET_KILL_PROCESS,
            ),
        ]
    };
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes an integer; PR_SET_SECCOMP is given a filter
    // program that lives through the call (the kernel copies it).
    #[allow(unsafe_code)]
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Forks a child (no exec) that records a breadcrumb, captures an error and a message and
/// calls `exit`; waits for it and checks that it exited with 0.
pub fn fork_a_child_that_captures_and_exits() {
    // SAFETY: the scenario has no thread of its own running; the child runs the tracker's
    // capture path and exits, as a program that forks without exec would.
    #[allow(unsafe_code)]
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        stacktrace::add_breadcrumb(stacktrace::Breadcrumb::new(
            stacktrace::Level::Info,
            "child",
            "the child's breadcrumb",
        ));
        stacktrace::capture_message("captured in the forked child", stacktrace::Level::Error);
        let e = std::io::Error::other("an error of the forked child");
        stacktrace::capture_error(&e);
        std::process::exit(0);
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid status pointer.
    #[allow(unsafe_code)]
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child ended with {status:#x}"
    );
}

/// The thread's body: a breadcrumb, then a recursion that overflows its stack.
extern "C" fn breadcrumb_then_overflow(f: *mut c_void) -> *mut c_void {
    stacktrace::add_breadcrumb(stacktrace::Breadcrumb::new(
        stacktrace::Level::Info,
        "foreign",
        "in a thread std did not make",
    ));
    overflow(f)
}

/// The thread's body: a recursion that overflows its stack, the tracker never met.
extern "C" fn overflow(f: *mut c_void) -> *mut c_void {
    // SAFETY: the argument is the `fn(u64) -> u64` passed below.
    #[allow(unsafe_code)]
    let recurse: fn(u64) -> u64 = unsafe { std::mem::transmute(f) };
    println!("{}", recurse(0));
    std::ptr::null_mut()
}

/// Runs `recurse` in a thread made with `pthread_create` (as a C library makes its
/// threads: no alternate signal stack from `std`), after it recorded a breadcrumb when
/// `breadcrumb`.
pub fn overflow_in_a_thread_std_did_not_make(recurse: fn(u64) -> u64, breadcrumb: bool) {
    let mut thread: libc::pthread_t = 0;
    // SAFETY: a default-attribute thread running a C-ABI function with a plain pointer
    // argument; joined before the function returns.
    #[allow(unsafe_code)]
    unsafe {
        let made = libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            if breadcrumb {
                breadcrumb_then_overflow
            } else {
                overflow
            },
            recurse as *mut c_void,
        );
        assert_eq!(made, 0);
        libc::pthread_join(thread, std::ptr::null_mut());
    }
}
