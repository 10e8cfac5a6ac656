//! The loaded modules (the executable and its shared libraries) and the symbols of an
//! address relative to one of them, read from the module's file.
//!
//! A return address means nothing outside the process that took it: the module it falls in
//! was loaded at an address chosen at start. Relative to the module's load address, with
//! the module's GNU build id, it names one instruction of one build for good. The panic
//! hook journals addresses in that form (resolving symbols would take the first panic of a
//! process tens of milliseconds or more, loading debug info); the writer, or the next
//! process that opens the database, resolves them by reading the module's file when that
//! file is still the same build.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::capture::trace::RawTrace;
use crate::model::event::{CrashEvent, Frame, UnresolvedFrames, UnresolvedModule};
use crate::pipeline::fingerprint::fingerprint_of;
use crate::pipeline::resolve::frames::{frames_from_trace, frames_kept};
use crate::pipeline::resolve::in_app::{is_in_app, running_settings, InAppRules};

/// One loaded module: where its segments lie in memory, its file and its build id. A crash
/// record keeps the table of its process, to place its addresses after the process is gone.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Module {
    /// What its addresses in the file are offset by in memory.
    bias: usize,
    /// Its loaded segments, as `start..end` in memory.
    segments: Vec<(usize, usize)>,
    path: PathBuf,
    /// The GNU build id, hex; empty when the module has none.
    build_id: String,
}

/// The modules loaded when first asked (at install): read once, since the hook must not
/// take the loader's lock. A module loaded later is not found; its addresses are resolved
/// in the process, or kept as they are.
pub(crate) fn loaded() -> &'static [Module] {
    static MODULES: OnceLock<Vec<Module>> = OnceLock::new();
    MODULES.get_or_init(read_loaded)
}

/// Whether a panic's addresses can be journaled for later: the executable, which holds the
/// program's own frames, has a build id to find its file by. Without one, the hook
/// resolves them itself, or no later process could.
pub(crate) fn can_journal_addresses() -> bool {
    loaded().first().is_some_and(|exe| !exe.build_id.is_empty())
}

/// `ip`'s module in `modules` and its address as the module's file gives it.
fn relative(modules: &[Module], ip: usize) -> Option<(usize, u64)> {
    modules.iter().enumerate().find_map(|(i, m)| {
        m.segments
            .iter()
            .any(|(start, end)| (*start..*end).contains(&ip))
            .then(|| (i, ip.wrapping_sub(m.bias) as u64))
    })
}

/// The addresses of a stack relative to their modules, innermost first; an address in no
/// known module is kept with no module. The running in-app rules go with them.
pub(crate) fn unresolved_of(ips: &[usize]) -> UnresolvedFrames {
    unresolved_in(loaded(), ips)
}

/// [`unresolved_of`] with the modules of another process, as its crash record lists them.
pub(crate) fn unresolved_in(modules: &[Module], ips: &[usize]) -> UnresolvedFrames {
    let mut used: Vec<usize> = Vec::new();
    let mut addresses = Vec::with_capacity(ips.len());
    for &ip in ips {
        match relative(modules, ip) {
            Some((m, offset)) => {
                let index = match used.iter().position(|u| *u == m) {
                    Some(i) => i,
                    None => {
                        used.push(m);
                        used.len() - 1
                    }
                };
                addresses.push((index as u32, offset));
            }
            None => addresses.push((u32::MAX, ip as u64)),
        }
    }
    UnresolvedFrames {
        modules: used
            .iter()
            .filter_map(|m| modules.get(*m))
            .map(|m| UnresolvedModule {
                path: m.path.display().to_string(),
                build_id: m.build_id.clone(),
            })
            .collect(),
        addresses,
        reason: None,
        in_app: Some(running_settings()),
    }
}

/// Module files opened to resolve journaled events, by path and build id, or why one
/// could not be: a merge of many events reads each file once.
#[derive(Default)]
pub(crate) struct ModuleFiles(HashMap<(String, String), Result<symbols::File, String>>);

impl std::fmt::Debug for ModuleFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleFiles")
            .field("open", &self.0.len())
            .finish()
    }
}

thread_local! {
    /// Set while this thread merges journals without reading module files: see
    /// [`without_module_files`].
    static FILES_UNREAD: Cell<bool> = const { Cell::new(false) };
}

/// Why a journaled event's addresses stay as they are while [`without_module_files`] runs.
pub(crate) const FILES_UNREAD_REASON: &str = "reading the modules' debug info failed (it ended \
     a trial open of the database, and in a build where a panic aborts it is not tried again)";

/// Runs `f` with the journaled events this thread resolves from module files kept
/// unresolved instead, with [`FILES_UNREAD_REASON`]. In a `panic = "abort"` build no
/// `catch_unwind` holds, so a module file that makes the symbol readers panic would end the
/// program opening the database; once a trial open showed it, the open merges this way.
pub(crate) fn without_module_files<T>(f: impl FnOnce() -> T) -> T {
    /// Puts the thread's setting back, even if `f` unwinds.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FILES_UNREAD.with(|u| u.set(self.0));
        }
    }
    let _restore = Restore(FILES_UNREAD.with(|u| u.replace(true)));
    f()
}

/// Gives a journaled event its frames, and its fingerprint from them: from `trace` (the
/// stack as taken in this process) when there is one, else from the modules' files, module
/// by module. The addresses of a module whose file cannot resolve them (gone, another
/// build, no build id) stay in [`CrashEvent::unresolved`] with the reason, and stand in the
/// frames as `file+0xoffset`. When no frame of the app's resolves, the event keeps all its
/// addresses and its fingerprint stays the one its message gave: frames of libraries
/// alone do not say where it failed.
pub(crate) fn resolve_journaled(
    event: &mut CrashEvent,
    trace: Option<&RawTrace>,
    files: &mut ModuleFiles,
) {
    let Some(unresolved) = event.unresolved.as_mut() else {
        return;
    };
    let (frames, left) = match trace {
        Some(t) => (frames_from_trace(t), None),
        None if FILES_UNREAD.with(Cell::get) => {
            unresolved.reason = Some(FILES_UNREAD_REASON.to_owned());
            return;
        }
        // A module file is read as found on disk: parsing it must not take down the
        // program opening the database.
        None => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            resolve_from_files(unresolved, files)
        }))
        .unwrap_or_else(|_| Err("reading the modules' debug info failed".to_owned()))
        {
            Ok((resolved, left)) => {
                let frames = frames_kept(&resolved);
                if let Some(left) = left.as_ref().filter(|_| !frames.iter().any(|f| f.in_app)) {
                    unresolved.reason.clone_from(&left.reason);
                    return;
                }
                (frames, left)
            }
            Err(why) => {
                unresolved.reason = Some(why);
                return;
            }
        },
    };
    event.frames = frames;
    event.unresolved = left;
    event.fingerprint = fingerprint_of(&event.error_type, &event.frames, &event.message);
}

/// Each address's frames, innermost first, and the addresses left unresolved.
type Resolved = (Vec<Arc<[Frame]>>, Option<UnresolvedFrames>);

/// Resolves journaled addresses by reading each module's file, judged by the in-app rules
/// journaled with them (the running ones for a journal that has none). Also returns the
/// addresses of the modules that could not be read, with why; `Err` when none could.
fn resolve_from_files(
    trace: &UnresolvedFrames,
    files: &mut ModuleFiles,
) -> Result<Resolved, String> {
    let rules = trace.in_app.as_ref().map(InAppRules::of_settings);
    let judge = |function: &str, file: Option<&str>| match &rules {
        Some(rules) => rules.judge(function, file),
        None => is_in_app(function, file),
    };
    // Each module's file, or why it cannot resolve the module's addresses.
    let mut status: Vec<Result<(String, String), String>> = Vec::new();
    for m in &trace.modules {
        let key = (m.path.clone(), m.build_id.clone());
        status.push(if m.build_id.is_empty() {
            Err(format!("{} has no build id", m.path))
        } else {
            match files
                .0
                .entry(key.clone())
                .or_insert_with(|| symbols::File::open(Path::new(&m.path), &m.build_id))
            {
                Ok(_) => Ok(key),
                Err(why) => Err(why.clone()),
            }
        });
    }
    if !status.is_empty() && status.iter().all(Result::is_err) {
        let why: Vec<&str> = status
            .iter()
            .filter_map(|s| s.as_ref().err())
            .map(String::as_str)
            .collect();
        return Err(why.join("; "));
    }
    let mut left = UnresolvedFrames {
        in_app: trace.in_app.clone(),
        ..UnresolvedFrames::default()
    };
    // Indexes into `left.modules` of the modules left, by their index in `trace.modules`.
    let mut left_index: HashMap<u32, u32> = HashMap::new();
    let mut out = Vec::with_capacity(trace.addresses.len());
    for &(module, offset) in &trace.addresses {
        let Some(m) = trace.modules.get(module as usize) else {
            out.push(Arc::from(vec![Frame::default()]));
            continue;
        };
        let file = status
            .get(module as usize)
            .and_then(|s| s.as_ref().ok())
            .and_then(|key| files.0.get(key))
            .and_then(|f| f.as_ref().ok());
        if let Some(f) = file {
            out.push(f.frames_at(offset, &judge));
            continue;
        }
        let index = *left_index.entry(module).or_insert_with(|| {
            left.modules.push(m.clone());
            (left.modules.len() - 1) as u32
        });
        left.addresses.push((index, offset));
        let name = Path::new(&m.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| m.path.clone());
        out.push(Arc::from(vec![Frame {
            function: format!("{name}+{offset:#x}"),
            ..Frame::default()
        }]));
    }
    if left.addresses.is_empty() {
        return Ok((out, None));
    }
    let why: Vec<&str> = left_index
        .keys()
        .filter_map(|m| status.get(*m as usize)?.as_ref().err().map(String::as_str))
        .collect();
    left.reason = Some(why.join("; "));
    Ok((out, Some(left)))
}

// Reading the loader's list of modules is a C call with raw pointers; the blocks below say
// why each is sound.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn read_loaded() -> Vec<Module> {
    use std::ffi::CStr;

    /// The build id in a note segment: notes of (name size, desc size, type, name, desc),
    /// each part 4-byte aligned; the GNU build id has type 3 and name "GNU\0".
    fn build_id_in(notes: &[u8]) -> Option<String> {
        let word = |at: usize| -> Option<usize> {
            let b = notes.get(at..at + 4)?;
            Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let align = |n: usize| (n + 3) & !3;
        let mut at = 0;
        while at + 12 <= notes.len() {
            let (name_len, desc_len, kind) = (word(at)?, word(at + 4)?, word(at + 8)?);
            let name_at = at + 12;
            let desc_at = name_at + align(name_len);
            let next = desc_at + align(desc_len);
            if kind == 3 && notes.get(name_at..name_at + name_len) == Some(b"GNU\0") {
                let desc = notes.get(desc_at..desc_at + desc_len)?;
                return Some(desc.iter().map(|b| format!("{b:02x}")).collect());
            }
            at = next;
        }
        None
    }

    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `info` for the duration of the call, and
        // `data` is the `Vec<Module>` that `read_loaded` gave it, borrowed by nothing else.
        // The program headers it points to, and the note segments they describe, are
        // mapped while the module is loaded, which it is during the call.
        unsafe {
            let (Some(info), Some(out)) = (info.as_ref(), data.cast::<Vec<Module>>().as_mut())
            else {
                return 0;
            };
            let bias = info.dlpi_addr as usize;
            let headers = if info.dlpi_phdr.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum))
            };
            let mut segments = Vec::new();
            let mut build_id = None;
            for h in headers {
                let start = bias.wrapping_add(h.p_vaddr as usize);
                if h.p_type == libc::PT_LOAD {
                    segments.push((start, start.wrapping_add(h.p_memsz as usize)));
                } else if h.p_type == libc::PT_NOTE && build_id.is_none() {
                    let notes = std::slice::from_raw_parts(start as *const u8, h.p_memsz as usize);
                    build_id = build_id_in(notes);
                }
            }
            let name = if info.dlpi_name.is_null() {
                String::new()
            } else {
                CStr::from_ptr(info.dlpi_name)
                    .to_string_lossy()
                    .into_owned()
            };
            // The executable comes first, with no name.
            let path = if name.is_empty() && out.is_empty() {
                std::env::current_exe().unwrap_or_default()
            } else {
                PathBuf::from(name)
            };
            if !path.as_os_str().is_empty() && !segments.is_empty() {
                out.push(Module {
                    bias,
                    segments,
                    path,
                    build_id: build_id.unwrap_or_default(),
                });
            }
        }
        0
    }

    let mut modules: Vec<Module> = Vec::new();
    // SAFETY: `each` matches the callback type and only reads what it is given; `modules`
    // outlives the call.
    unsafe {
        libc::dl_iterate_phdr(Some(each), (&raw mut modules).cast());
    }
    modules
}

#[cfg(not(target_os = "linux"))]
fn read_loaded() -> Vec<Module> {
    Vec::new()
}

/// Symbols of a module's file, through its DWARF line and function tables, or its symbol
/// table where those say nothing. The file is mapped, not read: a dev build's debug info
/// can be hundreds of megabytes, and resolving a few addresses touches a few pages of it.
mod symbols {
    use std::ops::Deref;
    use std::path::Path;
    use std::sync::Arc;

    use object::{Object, ObjectSection, ObjectSymbol};

    use crate::model::event::Frame;
    use crate::pipeline::resolve::frames::frame_judged;

    /// A module file mapped into memory, shared by the readers of its sections.
    #[derive(Debug, Clone)]
    struct Mapped(Arc<memmap2::Mmap>);

    impl Deref for Mapped {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            &self.0
        }
    }

    // SAFETY: the bytes live in the mapping, which the `Arc` keeps in place until its last
    // clone is dropped: moving or cloning a `Mapped` never moves them.
    #[allow(unsafe_code)]
    unsafe impl gimli::StableDeref for Mapped {}
    // SAFETY: as above; a clone shares the same mapping.
    #[allow(unsafe_code)]
    unsafe impl gimli::CloneStableDeref for Mapped {}

    type Reader = gimli::EndianReader<gimli::RunTimeEndian, Mapped>;

    pub(super) struct File {
        context: addr2line::Context<Reader>,
        /// Function symbols, by address, with their sizes.
        symbols: Vec<(u64, u64, String)>,
    }

    /// Maps the file at `path` into memory, read-only.
    #[allow(unsafe_code)]
    fn map(path: &Path) -> Result<Mapped, String> {
        // The path comes from a journal or a crash record: whatever is there now is opened
        // only when it is a regular file, and never waited on (a FIFO would block).
        let file = crate::untrusted::open_regular(path, false)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: the mapping is only read. A file changed in place while mapped would show
        // its new bytes, which the parsers read through bounds-checked slices (wrong frames,
        // no undefined reads); toolchains and package managers replace a module's file
        // rather than rewrite it, which leaves this mapping the old one. The `backtrace`
        // crate maps these same files in the running process.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| format!("{}: cannot map the file: {e}", path.display()))?;
        Ok(Mapped(Arc::new(map)))
    }

    impl File {
        /// Opens the module file at `path` if it is the build `build_id` names.
        pub(super) fn open(path: &Path, build_id: &str) -> Result<File, String> {
            let data = map(path)?;
            let obj = object::File::parse(&*data)
                .map_err(|e| format!("{}: not a readable module: {e}", path.display()))?;
            let id: Option<String> = obj
                .build_id()
                .ok()
                .flatten()
                .map(|b| b.iter().map(|b| format!("{b:02x}")).collect());
            if id.as_deref() != Some(build_id) {
                return Err(format!(
                    "{} is another build now (build id {}, the event's {build_id})",
                    path.display(),
                    id.as_deref().unwrap_or("none")
                ));
            }
            let endian = if obj.is_little_endian() {
                gimli::RunTimeEndian::Little
            } else {
                gimli::RunTimeEndian::Big
            };
            // Each section is a window on the mapping: nothing is copied.
            let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
                let range = obj
                    .section_by_name(id.name())
                    .and_then(|s| s.file_range())
                    .and_then(|(start, size)| {
                        let start = usize::try_from(start).ok()?;
                        let end = start.checked_add(usize::try_from(size).ok()?)?;
                        (end <= data.len()).then_some(start..end)
                    })
                    .unwrap_or(0..0);
                Ok(gimli::EndianReader::new(data.clone(), endian).range(range))
            };
            let dwarf = gimli::Dwarf::load(load).map_err(|e| format!("{}: {e}", path.display()))?;
            let context = addr2line::Context::from_dwarf(dwarf)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let mut symbols: Vec<(u64, u64, String)> = obj
                .symbols()
                .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
                .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_owned())))
                .collect();
            symbols.sort_by_key(|s| s.0);
            Ok(File { context, symbols })
        }

        /// The frames (more than one where calls were inlined) of a return address, judged
        /// app's or not by `in_app`.
        pub(super) fn frames_at(
            &self,
            offset: u64,
            in_app: &dyn Fn(&str, Option<&str>) -> bool,
        ) -> Arc<[Frame]> {
            // A return address is one past the call: look up the call itself.
            let probe = offset.saturating_sub(1);
            let mut out = Vec::new();
            if let Ok(mut frames) = self.context.find_frames(probe).skip_all_loads() {
                while let Ok(Some(f)) = frames.next() {
                    let name = f
                        .function
                        .as_ref()
                        .and_then(|n| n.raw_name().ok())
                        .map(|n| n.into_owned());
                    let (file, line) = f
                        .location
                        .map(|l| (l.file.map(str::to_owned), l.line))
                        .unwrap_or_default();
                    let name = name.or_else(|| self.symbol_at(probe));
                    out.push(frame_judged(name.as_deref(), file, line, in_app));
                }
            }
            if out.is_empty() {
                out.push(frame_judged(
                    self.symbol_at(probe).as_deref(),
                    None,
                    None,
                    in_app,
                ));
            }
            out.into()
        }

        fn symbol_at(&self, addr: u64) -> Option<String> {
            let i = self
                .symbols
                .partition_point(|s| s.0 <= addr)
                .checked_sub(1)?;
            let (start, size, name) = self.symbols.get(i)?;
            (size == &0 || addr < start + size).then(|| name.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journaled(module: &Path) -> CrashEvent {
        let mut e = CrashEvent::sample(0x51, "journaled");
        e.unresolved = Some(UnresolvedFrames {
            modules: vec![UnresolvedModule {
                path: module.display().to_string(),
                build_id: "00ff00ff".into(),
            }],
            addresses: vec![(0, 4096)],
            ..UnresolvedFrames::default()
        });
        e
    }

    #[test]
    fn without_module_files_a_journaled_event_keeps_its_addresses_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("module.so");
        std::fs::write(&module, b"not a module").unwrap();
        let mut e = journaled(&module);
        without_module_files(|| resolve_journaled(&mut e, None, &mut ModuleFiles::default()));
        let left = e.unresolved.expect("addresses kept");
        assert_eq!(left.addresses, [(0, 4096)]);
        assert_eq!(left.reason.as_deref(), Some(FILES_UNREAD_REASON));
        // Control: outside it, the file is read (and refused).
        let mut e = journaled(&module);
        resolve_journaled(&mut e, None, &mut ModuleFiles::default());
        let reason = e.unresolved.and_then(|u| u.reason).unwrap_or_default();
        assert!(reason.contains("not a readable module"), "{reason}");
    }
}
