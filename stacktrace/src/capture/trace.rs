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
    #[inline(never)]
    pub(crate) fn capture() -> RawTrace {
        let mut ips = Vec::with_capacity(64);
        let here = std::ptr::addr_of!(ips) as usize;
        let mut callees = 0;
        let mut seen_caller = false;
        backtrace::trace(|frame| {
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
