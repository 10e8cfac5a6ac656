//! Alternate signal stacks for the threads std did not make. A stack overflow can only be
//! handled on another stack; std gives one to the main thread and to the threads it
//! spawns, but a thread made with `pthread_create` (by a C library, or by hand) has none,
//! and its overflow would end the process before any handler ran. Such a thread gets one
//! the first time it records a breadcrumb or captures an event, mapped once and unmapped
//! when the thread ends.

use std::cell::{Cell, RefCell};

/// The size of the stacks given: the handler walks the crashed stack and calls the handler
/// that was there before, and a signal frame alone takes a few KiB on a machine with wide
/// vector registers.
const SIZE: usize = 64 * 1024;

/// A stack mapped for this thread, with a guard page below it; unmapped when the thread
/// ends.
struct Mapped {
    base: *mut libc::c_void,
    len: usize,
    /// Where the usable stack begins, above the guard page.
    stack: *mut libc::c_void,
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: reading and clearing this thread's alternate stack, then unmapping the
        // mapping this thread made; the stack is off first, so no signal runs on it after.
        #[allow(unsafe_code)]
        unsafe {
            let mut now: libc::stack_t = std::mem::zeroed();
            if libc::sigaltstack(std::ptr::null(), &mut now) == 0
                && now.ss_sp == self.stack
                && now.ss_flags & libc::SS_ONSTACK == 0
            {
                let off = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                libc::sigaltstack(&off, std::ptr::null_mut());
            } else if now.ss_sp == self.stack {
                // Running on it (a thread ending from a signal handler): left mapped.
                return;
            }
            libc::munmap(self.base, self.len);
        }
    }
}

thread_local! {
    /// This thread was looked at: it has a stack, its own or one given here.
    static LOOKED: Cell<bool> = const { Cell::new(false) };
    static GIVEN: RefCell<Option<Mapped>> = const { RefCell::new(None) };
}

/// Gives the calling thread an alternate signal stack when it has none; after the first
/// call on a thread, a read of a thread-local.
pub(crate) fn give_this_thread() {
    if LOOKED.try_with(|l| l.replace(true)).unwrap_or(true) {
        return;
    }
    let _ = GIVEN.try_with(|given| {
        let Ok(mut given) = given.try_borrow_mut() else {
            return;
        };
        if given.is_none() && !has_one() {
            *given = map_and_set();
        }
    });
}

fn has_one() -> bool {
    // SAFETY: reading this thread's alternate stack into a valid struct.
    #[allow(unsafe_code)]
    unsafe {
        let mut now: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut now) == 0 && now.ss_flags & libc::SS_DISABLE == 0
    }
}

fn map_and_set() -> Option<Mapped> {
    // SAFETY: sysconf has no precondition.
    #[allow(unsafe_code)]
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .ok()
        .filter(|p| *p > 0)?;
    let len = page + SIZE;
    // SAFETY: an anonymous private mapping, given no access until its stack part is made
    // readable and writable: the page below it stays a guard.
    #[allow(unsafe_code)]
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return None;
        }
        let stack = base.cast::<u8>().add(page).cast::<libc::c_void>();
        let mapped = Mapped { base, len, stack };
        if libc::mprotect(stack, SIZE, libc::PROT_READ | libc::PROT_WRITE) != 0 {
            return None;
        }
        let alt = libc::stack_t {
            ss_sp: stack,
            ss_flags: 0,
            ss_size: SIZE,
        };
        if libc::sigaltstack(&alt, std::ptr::null_mut()) != 0 {
            return None;
        }
        Some(mapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A thread made without std has no alternate stack; after the call it has one, of the
    // size given, and the same one after a second call.
    #[test]
    fn a_thread_without_a_stack_gets_one_once() {
        std::thread::spawn(|| {
            // SAFETY: turning this test thread's alternate stack off, as a thread made with
            // pthread_create starts.
            #[allow(unsafe_code)]
            unsafe {
                let off = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                libc::sigaltstack(&off, std::ptr::null_mut());
            }
            assert!(!has_one());
            give_this_thread();
            let read = || {
                // SAFETY: reading this thread's alternate stack into a valid struct.
                #[allow(unsafe_code)]
                unsafe {
                    let mut now: libc::stack_t = std::mem::zeroed();
                    libc::sigaltstack(std::ptr::null(), &mut now);
                    (now.ss_sp as usize, now.ss_size)
                }
            };
            let first = read();
            assert_eq!(first.1, SIZE);
            give_this_thread();
            assert_eq!(read(), first);
        })
        .join()
        .unwrap();
    }
}
