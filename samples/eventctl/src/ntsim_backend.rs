//! The embedded-ntsim backend: a script runs against a driver loaded into a fresh simulated NT
//! machine, on virtual time, through the I/O manager's user-mode API (`ntsim::iomgr`).
//!
//! One run: a new [`Kernel`] (default config: 2 CPUs, virtual time, FIFO scheduling — so the same
//! script always gives the same observations); its main thread loads the driver and starts one
//! client thread in a user process. The client performs every action at its virtual time with
//! the system calls a Win32 program would make (`CreateFile` overlapped, `DeviceIoControl`,
//! `CancelIoEx`, `CloseHandle`, `CreateEvent`, `ResetEvent`); at `end` it closes what is left
//! open and the main thread unloads the driver and collects the leak report.
//!
//! **Same-instant order.** The client acts at `t` only once the machine has *settled* at `t`
//! ([`iomgr::sleep_until_settled`]): every timer due at `t` has expired and the DPCs and threads
//! it woke have run. So a timer expiry and an action at the same millisecond always happen in
//! that order, whatever the driver's completion context (a DPC for StartIo, a worker thread for
//! the csq driver).
//!
//! **Observations.** Every request's record (`RequestInfo`) gives its completion time, status,
//! Information and whether the dispatch routine returned STATUS_PENDING; every script event's
//! log (`event_log_of`) gives its not-signalled → signalled transitions. Both carry the I/O
//! manager's machine-wide sequence number, which orders observations of the same instant as
//! they happened. The client copies them out after every action (and the main thread once more
//! after the unload), so a run that the verifier stops still reports what happened before.
//!
//! **Counts.** `violations` is the number of verifier reports of the run except LEAK (whose
//! items are the leak report's); `leaks` is `LeakReport::count()` after the unload (or the
//! number of LEAK reports when the unload never ran). A fatal stop is a violation and its report
//! is in `reports`; it never panics the caller.
//!
//! **Driver images.** [`NtsimBackend::with_image_file`] runs a cross-built `.sys` instead of the
//! host-built driver: every run loads the file afresh (`ntsim::image::load_image`: one mapping per
//! machine, since the image's globals live in it) and starts it with
//! `ntsim::image::load_image_driver` under the same service name; DriverEntry and every routine the
//! image hands to the kernel run through the `win64` convention. Nothing else changes: the same
//! client, the same observations, the same counts.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ntsim::image::LoadedImage;
use ntsim::iomgr::{self, Handle, OpenMode, Process, Request, UnloadOutcome};
use ntsim::ntdef::{NTSTATUS, PDRIVER_INITIALIZE, PDRIVER_OBJECT, PVOID};
use ntsim::verifier::Rule;
use ntsim::{Config, Kernel};

use crate::backend::{Backend, BackendError, RunResult};
use crate::interface::{
    EVENT_BASED, INVALID_EVENT_HANDLE, IOCTL_REGISTER_EVENT, IRP_BASED, raw_input, register_event,
};
use crate::observation::{NtStatus, Observation};
use crate::script::{ActionKind, BadHandle, Label, Script};

/// 100 ns units per millisecond.
const TICKS_PER_MS: u64 = 10_000;

/// A driver as the backend loads it.
#[derive(Clone, Copy, Debug)]
pub struct DriverImage {
    /// The service name (`\Driver\<service>`): `StartIoEvent`, `CsqEvent`.
    pub service: &'static str,
    /// The driver's entry point (`csq::driver_entry!`'s function on the host); not called when
    /// the backend runs an image file ([`NtsimBackend::with_image_file`]).
    pub entry: PDRIVER_INITIALIZE,
    /// The device the client opens: `\\.\StartIoEvent`, `\\.\CsqEventSerial`, `\\.\CsqEvent`.
    pub device_path: &'static str,
}

/// Runs scripts against one driver's device on a fresh simulated machine per run.
#[derive(Debug)]
pub struct NtsimBackend {
    name: String,
    image: DriverImage,
    /// A driver image (`.sys`) to load instead of calling `image.entry`.
    file: Option<PathBuf>,
    config: Config,
}

/// The code a run starts: the host-built driver's entry point, or a freshly loaded image.
enum Code {
    Host(PDRIVER_INITIALIZE),
    Image(LoadedImage),
}

impl NtsimBackend {
    /// A backend named `name` (the summary's device name) for the device of `image`, on the
    /// default machine (2 CPUs, virtual time, FIFO).
    pub fn new(name: &str, image: DriverImage) -> NtsimBackend {
        NtsimBackend {
            name: name.to_owned(),
            image,
            file: None,
            config: Config::default(),
        }
    }

    /// The same backend running the driver image at `path` (a cross-built `.sys`, e.g.
    /// `target/windows/out/startio_event.sys`) instead of the host-built driver: loaded afresh
    /// for every run under `image.service`, its devices opened at `image.device_path`.
    pub fn with_image_file(mut self, path: impl Into<PathBuf>) -> NtsimBackend {
        self.file = Some(path.into());
        self
    }

    /// The image file this backend runs, if any.
    pub fn image_file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// What this run starts: a fresh mapping of the image file (its globals must start from the
    /// file's values), or the host-built entry point.
    fn code(&self) -> Result<Code, BackendError> {
        let Some(path) = &self.file else {
            return Ok(Code::Host(self.image.entry));
        };
        ntsim::image::load_image(path)
            .map(Code::Image)
            .map_err(|e| BackendError::Failed {
                device: self.name.clone(),
                message: format!("cannot load the driver image {}: {e}", path.display()),
            })
    }

    /// The same backend on a machine configured otherwise (tests: 1 CPU, another policy).
    pub fn with_config(mut self, config: Config) -> NtsimBackend {
        self.config = config;
        self
    }
}

/// Sort key of an observation: interrupt time, then the I/O manager's sequence number, then 0
/// for something the sequence number names and 1 for an error returned before any IRP existed
/// (it happened after everything numbered up to then).
type Key = (u64, u64, u8);

/// A request the client issued.
#[derive(Debug)]
struct Tracked {
    label: String,
    request: Request,
    recorded: bool,
}

/// A script event: its object and how many entries of its log have been looked at.
#[derive(Debug)]
struct TrackedEvent {
    label: String,
    object: usize,
    seen: usize,
}

/// What the run has observed so far; shared between the machine's threads and the caller.
#[derive(Debug, Default)]
struct Tracker {
    requests: Vec<Tracked>,
    events: Vec<TrackedEvent>,
    observed: Vec<(Key, Observation)>,
    /// Why the run could not be carried out (driver not loaded, device not opened).
    failure: Option<String>,
    /// The leak report's count, once the unload has run.
    leaks: Option<u64>,
    /// The leak report, for people.
    leak_lines: Vec<String>,
}

impl Tracker {
    /// Copies out the completions and signals that happened since the last call. Call from an
    /// emulated thread.
    fn poll(&mut self) {
        for t in self.requests.iter_mut().filter(|t| !t.recorded) {
            let info = t.request.info();
            let (Some(status), Some(at)) = (info.status, info.completed_at) else {
                continue;
            };
            t.recorded = true;
            let key = (at, info.completed_seq.unwrap_or(0), 0);
            self.observed.push((
                key,
                Observation::Completed {
                    t_ms: at / TICKS_PER_MS,
                    req: t.label.clone(),
                    status: NtStatus(status),
                    info: info.information as u64,
                    pending: info.pending,
                },
            ));
        }
        for e in &mut self.events {
            let log = iomgr::event_log_of(e.object as PVOID);
            for set in log.iter().skip(e.seen) {
                if set.previous == 0 {
                    self.observed.push((
                        (set.time, set.seq, 0),
                        Observation::Signalled {
                            t_ms: set.time / TICKS_PER_MS,
                            event: e.label.clone(),
                        },
                    ));
                }
            }
            e.seen = log.len();
        }
    }

    /// An IOCTL that failed before the I/O manager built an IRP (no request record).
    fn failed_early(&mut self, label: &str, status: NTSTATUS) {
        let now = iomgr::interrupt_time();
        self.observed.push((
            (now, iomgr::sequence(), 1),
            Observation::Completed {
                t_ms: now / TICKS_PER_MS,
                req: label.to_owned(),
                status: NtStatus(status),
                info: 0,
                pending: false,
            },
        ));
    }
}

fn lock(tracker: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    // A panic inside the machine is reported by the run; the data stays usable.
    tracker.lock().unwrap_or_else(|e| e.into_inner())
}

impl Backend for NtsimBackend {
    fn run(&mut self, script: &Script) -> Result<RunResult, BackendError> {
        let code = self.code()?;
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let kernel = Kernel::new(self.config.clone());
        let (image, script, shared) = (self.image, script.clone(), tracker.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            kernel.run(move || machine_main(image, code, &script, &shared))
        }));
        let mut t = lock(&tracker);
        let mut result = RunResult::default();
        match outcome {
            Ok(outcome) => {
                if let Some(message) = t.failure.take() {
                    return Err(BackendError::Failed {
                        device: self.name.clone(),
                        message,
                    });
                }
                let leak_reports = outcome.reports_of(Rule::Leak).len() as u64;
                result.violations = outcome.reports.len() as u64 - leak_reports;
                result.leaks = t.leaks.unwrap_or(leak_reports);
                result.reports = outcome.reports.iter().map(|r| r.to_string()).collect();
                if let Some(stop) = &outcome.stop {
                    if !outcome.reports.contains(stop) {
                        result.violations += 1;
                    }
                    result.reports.push(format!(
                        "the simulated machine stopped at {} ms: the run ended there",
                        stop.time / TICKS_PER_MS
                    ));
                }
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                result.violations = 1;
                result.reports.push(format!(
                    "an emulated thread panicked: {what}; the run ended there"
                ));
            }
        }
        result.reports.append(&mut t.leak_lines);
        let mut observed = std::mem::take(&mut t.observed);
        // Stable: equal keys (none in practice) keep the order they were copied out in.
        observed.sort_by_key(|(key, _)| *key);
        result.observations = observed.into_iter().map(|(_, o)| o).collect();
        Ok(result)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The machine's main thread: load, run the client, unload, collect.
fn machine_main(image: DriverImage, code: Code, script: &Script, tracker: &Arc<Mutex<Tracker>>) {
    let loaded: Result<PDRIVER_OBJECT, NTSTATUS> = match &code {
        Code::Host(entry) => ntsim::driver::load_driver(image.service, *entry),
        Code::Image(file) => ntsim::image::load_image_driver(file, image.service),
    };
    let driver = match loaded {
        Ok(driver) => driver,
        Err(status) => {
            let of = match &code {
                Code::Host(_) => String::new(),
                Code::Image(file) => format!(" ({})", file.name()),
            };
            lock(tracker).failure = Some(format!(
                "DriverEntry of {}{of} failed with {}",
                image.service,
                NtStatus(status)
            ));
            return;
        }
    };
    let process = Process::create("eventctl");
    let (client_script, client_tracker) = (script.clone(), tracker.clone());
    let client = process.spawn_thread("eventctl client", move || {
        Client::new(process, image.device_path, &client_tracker).run(&client_script);
    });
    client.join();
    if let Some(failure) = &mut lock(tracker).failure {
        if let Code::Image(file) = &code {
            // The usual cause: an image of the other driver (`--device` and `--image` disagree).
            failure.push_str(&format!(
                " (does the image {}, loaded as service {}, create this device?)",
                file.name(),
                image.service
            ));
        }
        return;
    }
    let report = match iomgr::unload_driver(driver) {
        Ok(UnloadOutcome::Unloaded(report)) => Some(report),
        Ok(UnloadOutcome::Deferred) => iomgr::wait_for_unload(driver),
        Err(status) => {
            lock(tracker).leak_lines.push(format!(
                "{} could not be unloaded: {}",
                image.service,
                NtStatus(status)
            ));
            None
        }
    };
    let mut t = lock(tracker);
    t.poll();
    if let Some(report) = report {
        t.leaks = Some(report.count() as u64);
        if !report.is_empty() {
            t.leak_lines
                .push(format!("left behind after unload: {report:?}"));
        }
    }
}

/// The client thread's state: the script's labels and what they stand for.
struct Client<'a> {
    process: Process,
    device: &'static str,
    tracker: &'a Mutex<Tracker>,
    /// Open device handles, in the order they were opened.
    open: Vec<(Label, Handle)>,
    /// Every request label: its handle label and request (none if it failed before an IRP).
    requests: HashMap<Label, (Label, Option<Request>)>,
    /// Script events: label → handle.
    events: HashMap<Label, Handle>,
    /// The semaphore handed out as `handle=not-event`, created on first use.
    semaphore: Option<Handle>,
}

impl<'a> Client<'a> {
    fn new(process: Process, device: &'static str, tracker: &'a Mutex<Tracker>) -> Self {
        Client {
            process,
            device,
            tracker,
            open: Vec::new(),
            requests: HashMap::new(),
            events: HashMap::new(),
            semaphore: None,
        }
    }

    fn run(&mut self, script: &Script) {
        for action in &script.actions {
            iomgr::sleep_until_settled(action.at_ms);
            if !self.act(&action.kind) {
                return;
            }
            lock(self.tracker).poll();
        }
    }

    fn handle(&self, label: &Label) -> Option<Handle> {
        self.open.iter().find(|(l, _)| l == label).map(|(_, h)| *h)
    }

    /// Performs one action; false stops the run (the device could not be opened).
    fn act(&mut self, kind: &ActionKind) -> bool {
        match kind {
            ActionKind::Open { handle } => {
                match iomgr::create_file(self.device, OpenMode::Overlapped) {
                    Ok(h) => self.open.push((handle.clone(), h)),
                    Err(status) => {
                        lock(self.tracker).failure =
                            Some(format!("cannot open {}: {}", self.device, NtStatus(status)));
                        return false;
                    }
                }
            }
            ActionKind::Irp { req, handle, due } => {
                let input = register_event(IRP_BASED, 0, due.due_time_100ns());
                self.ioctl(req, handle, IOCTL_REGISTER_EVENT, &input);
            }
            ActionKind::Event {
                event,
                handle,
                due_ms,
            } => {
                let h = match self.events.get(event) {
                    Some(h) => *h,
                    None => {
                        let h = iomgr::create_event(true, false);
                        let object = iomgr::event_object(self.process, h)
                            .expect("a handle just created")
                            as usize;
                        lock(self.tracker).events.push(TrackedEvent {
                            label: event.to_string(),
                            object,
                            seen: 0,
                        });
                        self.events.insert(event.clone(), h);
                        h
                    }
                };
                let due = crate::script::Due::Ms(*due_ms).due_time_100ns();
                let input = register_event(EVENT_BASED, h.raw() as u64, due);
                self.ioctl(event, handle, IOCTL_REGISTER_EVENT, &input);
            }
            ActionKind::BadEvent { req, handle, bad } => {
                let value = match bad {
                    BadHandle::Invalid => INVALID_EVENT_HANDLE,
                    BadHandle::NotEvent => {
                        let s = *self
                            .semaphore
                            .get_or_insert_with(|| iomgr::create_semaphore(0, 1));
                        s.raw() as u64
                    }
                };
                let input = register_event(EVENT_BASED, value, 0);
                self.ioctl(req, handle, IOCTL_REGISTER_EVENT, &input);
            }
            ActionKind::Raw {
                req,
                handle,
                len,
                ty,
                due_ms,
            } => {
                let input = raw_input(*len, *ty, *due_ms);
                self.ioctl(req, handle, IOCTL_REGISTER_EVENT, &input);
            }
            ActionKind::Ioctl {
                req,
                handle,
                code,
                len,
            } => {
                let input = vec![0u8; len.unwrap_or(0) as usize];
                self.ioctl(req, handle, *code, &input);
            }
            ActionKind::Cancel { req } => {
                if let Some((handle, Some(request))) = self.requests.get(req) {
                    // No effect on a completed request (STATUS_NOT_FOUND) or a closed handle.
                    if let Some(h) = self.handle(handle) {
                        iomgr::cancel_io_ex(h, Some(*request));
                    }
                }
            }
            ActionKind::Close { handle } => self.close(handle),
            ActionKind::Reset { event } => {
                if let Some(h) = self.events.get(event) {
                    // Cannot fail on the client's own event handle.
                    let _ = iomgr::reset_event(*h);
                }
            }
            ActionKind::End => {
                // Each close is an action of its own: the machine settles before it, as it does
                // between two `close` lines of one instant (a request that entered service with
                // due 0 on the previous close completes before the next one).
                let now = iomgr::interrupt_time() / TICKS_PER_MS;
                let labels: Vec<Label> = self.open.iter().map(|(l, _)| l.clone()).collect();
                for label in &labels {
                    iomgr::sleep_until_settled(now);
                    self.close(label);
                }
                iomgr::sleep_until_settled(now);
                let others: Vec<Handle> = self
                    .events
                    .values()
                    .copied()
                    .chain(self.semaphore)
                    .collect();
                for h in others {
                    iomgr::close_handle(h);
                }
            }
        }
        true
    }

    fn ioctl(&mut self, req: &Label, handle: &Label, code: u32, input: &[u8]) {
        let Some(h) = self.handle(handle) else {
            return; // the parser rejects a closed handle; nothing to do
        };
        let request = match iomgr::device_io_control(h, code, input, 0) {
            Ok(request) => {
                lock(self.tracker).requests.push(Tracked {
                    label: req.to_string(),
                    request,
                    recorded: false,
                });
                Some(request)
            }
            Err(status) => {
                // No IRP: e.g. METHOD_IN_DIRECT/OUT_DIRECT codes, which ntsim does not model.
                lock(self.tracker).failed_early(req.as_str(), status);
                None
            }
        };
        self.requests.insert(req.clone(), (handle.clone(), request));
    }

    fn close(&mut self, handle: &Label) {
        if let Some(i) = self.open.iter().position(|(l, _)| l == handle) {
            let (_, h) = self.open.remove(i);
            iomgr::close_handle(h);
        }
    }
}
