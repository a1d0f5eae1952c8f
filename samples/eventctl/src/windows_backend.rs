//! The Windows backend: a script runs against an installed driver's device (`\\.\StartIoEvent`,
//! `\\.\CsqEventSerial`, `\\.\CsqEvent`, or any device path) in real time.
//!
//! Every action waits until its time (milliseconds since the run began) and then makes the
//! system calls a Win32 client makes: `CreateFileW` with `FILE_FLAG_OVERLAPPED`, the IOCTL with an
//! `OVERLAPPED` whose manual-reset event tells its completion, `CancelIoEx` for that
//! `OVERLAPPED`, `CloseHandle`, `CreateEventW` and `ResetEvent`. The IOCTL is sent with
//! `NtDeviceIoControlFile`, exactly what `DeviceIoControl` does for an overlapped handle, because
//! the NTSTATUS is what eventctl prints: `DeviceIoControl` turns a synchronous failure into a
//! Win32 error, and several statuses share one (STATUS_INVALID_HANDLE and
//! STATUS_OBJECT_TYPE_MISMATCH are both ERROR_INVALID_HANDLE). STATUS_PENDING from it is what the
//! dispatch routine returned, hence `pending`.
//!
//! Completion and signal times are measured by polling every pending request's event and every
//! script event about once a millisecond, so they are real times with that resolution and the
//! scheduling noise of the machine. A real device has no verifier: `violations` is 0; a request
//! still not completed a few seconds after its handle was closed counts as a leak (its
//! `OVERLAPPED` is then never freed, since the kernel may still write it).

use std::collections::HashMap;
use std::ffi::c_void;
use std::time::{Duration, Instant};

use windows_sys::Wdk::System::IO::NtDeviceIoControlFile;
use windows_sys::Win32::Foundation::{
    CloseHandle, GENERIC_READ, GENERIC_WRITE, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
    WAIT_OBJECT_0,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::IO::{CancelIoEx, IO_STATUS_BLOCK, OVERLAPPED};
use windows_sys::Win32::System::Threading::{
    CreateEventW, CreateSemaphoreW, ResetEvent, WaitForSingleObject,
};

use crate::backend::{Backend, BackendError, RunResult};
use crate::interface::{
    EVENT_BASED, INVALID_EVENT_HANDLE, IOCTL_REGISTER_EVENT, IRP_BASED, raw_input, register_event,
};
use crate::observation::{NtStatus, Observation};
use crate::script::{ActionKind, BadHandle, Due, Label, Script};

/// How long `end` waits for the requests of the handles it closed.
const DRAIN: Duration = Duration::from_secs(5);
/// The polling period.
const POLL: Duration = Duration::from_millis(1);

/// Runs scripts against an installed device.
#[derive(Debug)]
pub struct WindowsBackend {
    path: String,
}

impl WindowsBackend {
    /// A backend for the device at `path` (`\\.\StartIoEvent`).
    pub fn new(path: &str) -> WindowsBackend {
        WindowsBackend {
            path: path.to_owned(),
        }
    }
}

/// An IOCTL in flight: its `OVERLAPPED` (boxed: the kernel writes it until completion).
struct InFlight {
    label: String,
    handle: Label,
    overlapped: Box<OVERLAPPED>,
}

/// A script event: its handle and whether it is known to be signalled.
struct ScriptEvent {
    label: String,
    handle: HANDLE,
    signalled: bool,
}

struct Run {
    start: Instant,
    path: Vec<u16>,
    observations: Vec<Observation>,
    open: Vec<(Label, HANDLE)>,
    in_flight: Vec<InFlight>,
    events: Vec<ScriptEvent>,
    semaphore: Option<HANDLE>,
    /// Request label → handle label, for `cancel` (only requests that went pending).
    requests: HashMap<Label, Label>,
    reports: Vec<String>,
    leaks: u64,
}

fn last_error() -> u32 {
    // SAFETY: reads the calling thread's last-error value.
    unsafe { GetLastError() }
}

impl Run {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn is_set(handle: HANDLE) -> bool {
        // SAFETY: a live event handle of this process; a zero timeout only polls.
        unsafe { WaitForSingleObject(handle, 0) == WAIT_OBJECT_0 }
    }

    /// Records what completed or was signalled since the last poll.
    fn poll(&mut self) {
        let mut i = 0;
        while i < self.in_flight.len() {
            if Self::is_set(self.in_flight[i].overlapped.hEvent) {
                let done = self.in_flight.swap_remove(i);
                let t_ms = self.now_ms();
                self.observations.push(Observation::Completed {
                    t_ms,
                    req: done.label,
                    // The IO_STATUS_BLOCK the kernel wrote: Internal = Status.
                    status: NtStatus(done.overlapped.Internal as i32),
                    info: done.overlapped.InternalHigh as u64,
                    pending: true,
                });
                // SAFETY: our event, no longer used by the kernel once completed.
                unsafe { CloseHandle(done.overlapped.hEvent) };
            } else {
                i += 1;
            }
        }
        for e in &mut self.events {
            if !e.signalled && Self::is_set(e.handle) {
                e.signalled = true;
                self.observations.push(Observation::Signalled {
                    t_ms: self.start.elapsed().as_millis() as u64,
                    event: e.label.clone(),
                });
            }
        }
    }

    /// Polls until `deadline`.
    fn wait_until(&mut self, deadline: Instant) {
        loop {
            self.poll();
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            std::thread::sleep((deadline - now).min(POLL));
        }
    }

    fn handle(&self, label: &Label) -> Option<HANDLE> {
        self.open.iter().find(|(l, _)| l == label).map(|(_, h)| *h)
    }

    fn open(&mut self, label: &Label) -> Result<(), String> {
        // SAFETY: a NUL-terminated UTF-16 path; no security attributes, no template.
        let h = unsafe {
            CreateFileW(
                self.path.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                std::ptr::null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            return Err(format!(
                "cannot open the device (Win32 error {}): is the driver installed and started, \
                 and is eventctl running as an administrator?",
                last_error()
            ));
        }
        self.open.push((label.clone(), h));
        Ok(())
    }

    fn ioctl(&mut self, req: &Label, handle: &Label, code: u32, input: &[u8]) {
        let Some(h) = self.handle(handle) else {
            return;
        };
        // SAFETY: creates a manual-reset, non-signalled, unnamed event.
        let event = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        // SAFETY: OVERLAPPED is plain data; all-zero is its initial state.
        let mut overlapped: Box<OVERLAPPED> = Box::new(unsafe { std::mem::zeroed() });
        overlapped.hEvent = event;
        let iosb = (&raw mut *overlapped).cast::<IO_STATUS_BLOCK>();
        let input_ptr = if input.is_empty() {
            std::ptr::null()
        } else {
            input.as_ptr().cast::<c_void>()
        };
        // SAFETY: `h` is an open overlapped handle; the OVERLAPPED starts with the
        // IO_STATUS_BLOCK (Internal, InternalHigh) and stays allocated until the completion
        // signals its event; the input is copied by the I/O manager (METHOD_BUFFERED) before
        // the call returns; there is no output buffer.
        let status = unsafe {
            NtDeviceIoControlFile(
                h,
                event,
                None,
                std::ptr::null(),
                iosb,
                code,
                input_ptr,
                input.len() as u32,
                std::ptr::null_mut(),
                0,
            )
        };
        if status == NtStatus::PENDING.0 {
            self.requests.insert(req.clone(), handle.clone());
            self.in_flight.push(InFlight {
                label: req.to_string(),
                handle: handle.clone(),
                overlapped,
            });
            return;
        }
        // Completed synchronously: with success the IOSB holds Information; an error was not
        // written to the IOSB (spec A.6) and is the returned status itself.
        let info = if status >= 0 {
            overlapped.InternalHigh as u64
        } else {
            0
        };
        self.observations.push(Observation::Completed {
            t_ms: self.now_ms(),
            req: req.to_string(),
            status: NtStatus(status),
            info,
            pending: false,
        });
        // SAFETY: our event; the request is complete.
        unsafe { CloseHandle(event) };
    }

    fn cancel(&mut self, req: &Label) {
        let Some(handle) = self.requests.get(req) else {
            return;
        };
        let Some(h) = self.handle(handle) else {
            return;
        };
        if let Some(f) = self.in_flight.iter().find(|f| f.label == req.as_str()) {
            // SAFETY: an open handle and the OVERLAPPED of one of its requests in flight;
            // "not found" (already completed) is no error here.
            unsafe { CancelIoEx(h, &raw const *f.overlapped) };
        }
    }

    fn close(&mut self, label: &Label) {
        if let Some(i) = self.open.iter().position(|(l, _)| l == label) {
            let (_, h) = self.open.remove(i);
            // SAFETY: an open handle of ours, closed once.
            unsafe { CloseHandle(h) };
        }
    }

    fn event_handle(&mut self, label: &Label) -> HANDLE {
        if let Some(e) = self.events.iter().find(|e| e.label == label.as_str()) {
            return e.handle;
        }
        // SAFETY: creates a manual-reset, non-signalled, unnamed event.
        let handle = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        self.events.push(ScriptEvent {
            label: label.to_string(),
            handle,
            signalled: false,
        });
        handle
    }

    fn act(&mut self, kind: &ActionKind) -> Result<(), String> {
        match kind {
            ActionKind::Open { handle } => self.open(handle)?,
            ActionKind::Irp { req, handle, due } => {
                let input = register_event(IRP_BASED, 0, due.due_time_100ns());
                self.ioctl(req, handle, IOCTL_REGISTER_EVENT, &input);
            }
            ActionKind::Event {
                event,
                handle,
                due_ms,
            } => {
                let h = self.event_handle(event);
                let input =
                    register_event(EVENT_BASED, h as u64, Due::Ms(*due_ms).due_time_100ns());
                self.ioctl(event, handle, IOCTL_REGISTER_EVENT, &input);
            }
            ActionKind::BadEvent { req, handle, bad } => {
                let value = match bad {
                    BadHandle::Invalid => INVALID_EVENT_HANDLE,
                    BadHandle::NotEvent => {
                        let s = *self.semaphore.get_or_insert_with(|| {
                            // SAFETY: creates an unnamed semaphore (count 0, maximum 1).
                            unsafe { CreateSemaphoreW(std::ptr::null(), 0, 1, std::ptr::null()) }
                        });
                        s as u64
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
            ActionKind::Cancel { req } => self.cancel(req),
            ActionKind::Close { handle } => self.close(handle),
            ActionKind::Reset { event } => {
                if let Some(e) = self.events.iter_mut().find(|e| e.label == event.as_str()) {
                    // SAFETY: our event handle.
                    unsafe { ResetEvent(e.handle) };
                    e.signalled = false;
                }
            }
            ActionKind::End => {
                let labels: Vec<Label> = self.open.iter().map(|(l, _)| l.clone()).collect();
                for label in &labels {
                    self.close(label);
                }
                self.drain();
            }
        }
        Ok(())
    }

    /// After the last close: waits for the requests still in flight, then releases everything.
    fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN;
        while !self.in_flight.is_empty() && Instant::now() < deadline {
            self.wait_until(Instant::now() + POLL);
        }
        self.poll();
        for f in self.in_flight.drain(..) {
            self.reports.push(format!(
                "request {} on {} did not complete within {} s of its handle's close",
                f.label,
                f.handle,
                DRAIN.as_secs()
            ));
            self.leaks += 1;
            // The kernel may still write the OVERLAPPED: never free it.
            Box::leak(f.overlapped);
        }
        for e in self.events.drain(..) {
            // SAFETY: our event handle, closed once.
            unsafe { CloseHandle(e.handle) };
        }
        if let Some(s) = self.semaphore.take() {
            // SAFETY: our semaphore handle, closed once.
            unsafe { CloseHandle(s) };
        }
    }
}

impl Backend for WindowsBackend {
    fn run(&mut self, script: &Script) -> Result<RunResult, BackendError> {
        let mut path: Vec<u16> = self.path.encode_utf16().collect();
        path.push(0);
        let mut run = Run {
            start: Instant::now(),
            path,
            observations: Vec::new(),
            open: Vec::new(),
            in_flight: Vec::new(),
            events: Vec::new(),
            semaphore: None,
            requests: HashMap::new(),
            reports: Vec::new(),
            leaks: 0,
        };
        for action in &script.actions {
            run.wait_until(run.start + Duration::from_millis(action.at_ms));
            if let Err(message) = run.act(&action.kind) {
                let labels: Vec<Label> = run.open.iter().map(|(l, _)| l.clone()).collect();
                for label in &labels {
                    run.close(label);
                }
                run.drain();
                return Err(BackendError::Failed {
                    device: self.path.clone(),
                    message,
                });
            }
            run.poll();
        }
        Ok(RunResult {
            observations: run.observations,
            violations: 0,
            leaks: run.leaks,
            reports: run.reports,
        })
    }

    fn name(&self) -> &str {
        &self.path
    }
}
