//! The stack of the calling thread, taken unresolved: return addresses only.

/// The most return addresses a [`RawTrace`] keeps, innermost first: enough that the most
/// frames an event keeps (128) remain after the machinery above the failing frame is cut.
pub(crate) const MAX_ADDRESSES: usize = 256;

/// The return addresses of a stack, innermost first, not resolved: all the calling thread
/// takes. Cheaper than [`backtrace::Backtrace::new_unresolved`], which also looks up each
/// frame's enclosing function, twice; symbols are found later, off the calling thread.
#[derive(Debug, Default)]
pub(crate) struct RawTrace(Vec<usize>);

impl RawTrace {
    /// The current thread's stack.
    ///
    /// The unwinder's own frames, called from here, are left out: their stack pointers lie
    /// below this function's locals (and so does this function's own frame, with unwinders
    /// that report a frame's stack pointer at its call). Their names cannot tell them apart
    /// in every build: with line tables only they are bare (`trace`,
    /// `trace_unsynchronized<..>`).
    ///
    /// It waits for no other thread: `backtrace::trace` takes the lock that
    /// `backtrace::resolve` holds while it loads a module's debug info (a hundred
    /// milliseconds and more) and looks up symbols, so a panic would wait for the writer
    /// resolving the previous ones.
    #[inline(never)]
    pub(crate) fn capture() -> RawTrace {
        let mut ips = Vec::with_capacity(64);
        let here = std::ptr::addr_of!(ips) as usize;
        let mut callees = 0;
        let mut seen_caller = false;
        walk(|frame| {
            if !seen_caller {
                let sp = frame.sp() as usize;
                if sp != 0 && sp <= here {
                    callees += 1;
                } else {
                    seen_caller = true;
                }
            }
            ips.push(frame.ip() as usize);
            ips.len() < MAX_ADDRESSES + callees
        });
        // A platform whose stack pointers say otherwise keeps everything.
        if seen_caller {
            ips.drain(..callees);
        }
        RawTrace(ips)
    }

    /// The return addresses, innermost first.
    pub(crate) fn ips(&self) -> &[usize] {
        &self.0
    }
}

/// Walks the calling thread's stack, unsynchronized where the unwinder allows it.
#[cfg(not(windows))]
#[allow(unsafe_code)]
fn walk(cb: impl FnMut(&backtrace::Frame) -> bool) {
    // SAFETY: off Windows the walk is the platform unwinder's (`_Unwind_Backtrace`), which
    // is thread-safe and shares no state with symbol resolution; the crate's lock only
    // serializes the Windows debug-help library, which is not.
    unsafe { backtrace::trace_unsynchronized(cb) }
}

/// Walks the calling thread's stack: debug-help needs the crate's lock.
#[cfg(windows)]
fn walk(cb: impl FnMut(&backtrace::Frame) -> bool) {
    backtrace::trace(cb)
}
