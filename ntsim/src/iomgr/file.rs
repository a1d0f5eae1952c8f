//! Opening a device by name (spec A.8): the FILE_OBJECT, IRP_MJ_CREATE, the handle; and the
//! per-file-object lock that serializes requests on synchronous (FO_SYNCHRONOUS_IO) handles.

use crate::machine::{Cx, World};
use crate::ntdef::{
    DO_DEVICE_INITIALIZING, FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_OBJECT, FILE_SHARE_READ,
    FILE_SHARE_WRITE, FO_HANDLE_CREATED, FO_SYNCHRONOUS_IO, IO_STACK_LOCATION_CREATE,
    IO_STACK_LOCATION_PARAMETERS, IO_TYPE_FILE, IRP_CREATE_OPERATION, IRP_MJ_CREATE,
    IRP_SYNCHRONOUS_API, NT_SUCCESS, NTSTATUS, NotificationEvent, PDEVICE_OBJECT,
    STATUS_NO_SUCH_DEVICE, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS, SynchronizationEvent,
};
use crate::object::ObjectKind;
use crate::sched::ActorId;

use super::Handle;
use super::raw::Raw;
use super::request::{IrpSpec, call_driver_and_wait};
use super::wait::{Terminated, user_wait};

/// `CreateOptions` disposition FILE_OPEN, in the top byte of `Parameters.Create.Options`.
const FILE_OPEN: u32 = 0x0000_0001;
/// `FILE_SYNCHRONOUS_IO_NONALERT` create option.
const FILE_SYNCHRONOUS_IO_NONALERT: u32 = 0x0000_0020;

/// How a handle is opened.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpenMode {
    /// Without FILE_FLAG_OVERLAPPED: the file object is FO_SYNCHRONOUS_IO, every request waits
    /// for its completion, and the I/O manager serializes requests on the file object.
    Synchronous,
    /// FILE_FLAG_OVERLAPPED: requests may return STATUS_PENDING.
    Overlapped,
}

/// ntsim's knowledge of an open file object.
#[derive(Debug)]
pub(crate) struct FileInfo {
    pub(crate) device: usize,
    pub(crate) process: u32,
    pub(crate) sync: bool,
    /// Open handles (CLEANUP goes when the last one is closed).
    pub(crate) handles: u32,
    /// The thread holding the FO_SYNCHRONOUS_IO lock.
    pub(crate) lock_owner: Option<ActorId>,
    /// The last reference went: IRP_MJ_CLOSE is queued or being sent.
    pub(crate) closing: bool,
    /// The FILE_OBJECT's memory (freed after IRP_MJ_CLOSE).
    pub(crate) storage: Raw<FILE_OBJECT>,
}

fn init_file_object(fo: &mut FILE_OBJECT, dev: PDEVICE_OBJECT, sync: bool) {
    fo.Type = IO_TYPE_FILE;
    fo.Size = size_of::<FILE_OBJECT>() as i16;
    fo.DeviceObject = dev;
    fo.Flags = if sync { FO_SYNCHRONOUS_IO } else { 0 };
    fo.ReadAccess = 1;
    fo.WriteAccess = 1;
    // SAFETY: the events are fields of a live FILE_OBJECT.
    unsafe { crate::event::init_event_object(&raw mut fo.Lock, SynchronizationEvent, false) };
    // SAFETY: as above.
    unsafe { crate::event::init_event_object(&raw mut fo.Event, NotificationEvent, false) };
    let head = &raw mut fo.IrpList;
    fo.IrpList.Flink = head;
    fo.IrpList.Blink = head;
}

impl World {
    /// Why a device cannot be opened now (IopCheckDeviceAndDriver), if it cannot.
    fn check_device_and_driver(&self, dev: usize) -> Result<(), NTSTATUS> {
        let driver = self.driver_of(dev).ok_or(STATUS_NO_SUCH_DEVICE)?;
        let unloading = self.iomgr.unloads.contains_key(&driver)
            || self.drivers.drivers.get(&driver).is_none_or(|d| d.unloaded);
        // SAFETY: `dev` is a live device object of the driver table.
        let flags = unsafe { (*(dev as PDEVICE_OBJECT)).Flags };
        if unloading || flags & DO_DEVICE_INITIALIZING != 0 {
            return Err(STATUS_NO_SUCH_DEVICE);
        }
        Ok(())
    }

    /// The FILE_OBJECT behind `file`.
    pub(crate) fn file_object(&self, file: usize) -> *mut FILE_OBJECT {
        self.iomgr.files[&file].storage.ptr()
    }
}

/// CreateFile on a device: `\\.\Name` (through its symbolic link), `\DosDevices\Name`,
/// `\??\Name` or `\Device\Name`. Creates a FILE_OBJECT on the device (a new reference to it),
/// sends IRP_MJ_CREATE to the driver on the calling thread and, when the driver succeeds,
/// returns a handle in the calling thread's process.
///
/// Returns STATUS_OBJECT_NAME_NOT_FOUND for an unknown name, STATUS_NO_SUCH_DEVICE for a
/// device that is initializing or whose driver is unloading, or the status the driver
/// completed IRP_MJ_CREATE with.
pub fn create_file(name: &str, mode: OpenMode) -> Result<Handle, NTSTATUS> {
    let cx = Cx::get();
    if super::process::termination_requested(&cx) {
        super::process::terminate_current(&cx);
    }
    let sync = mode == OpenMode::Synchronous;
    let (dev, file, spec) = {
        let mut g = cx.lock();
        super::worker::ensure_started(&cx, &mut g);
        let Some(dev) = g.resolve_device(name) else {
            return Err(STATUS_OBJECT_NAME_NOT_FOUND);
        };
        g.check_device_and_driver(dev)?;
        let storage = Raw::<FILE_OBJECT>::zeroed();
        let file = storage.addr();
        // SAFETY: fresh storage for a FILE_OBJECT that nothing else references.
        init_file_object(unsafe { &mut *storage.ptr() }, dev as PDEVICE_OBJECT, sync);
        // The object manager's reference: the handle's, once the open succeeds.
        g.register_object(file, ObjectKind::File, Some(name.to_string()));
        // SAFETY: a live device object; the I/O manager's reference for the file object.
        unsafe { (*(dev as PDEVICE_OBJECT)).ReferenceCount += 1 };
        let process = g.threads.process_of(cx.me);
        g.iomgr.files.insert(
            file,
            FileInfo {
                device: dev,
                process,
                sync,
                handles: 0,
                lock_owner: None,
                closing: false,
                storage,
            },
        );
        let options = (FILE_OPEN << 24)
            | if sync {
                FILE_SYNCHRONOUS_IO_NONALERT
            } else {
                0
            };
        let spec = IrpSpec {
            major: IRP_MJ_CREATE,
            dev: dev as PDEVICE_OBJECT,
            file,
            flags: IRP_CREATE_OPERATION | IRP_SYNCHRONOUS_API,
            params: IO_STACK_LOCATION_PARAMETERS {
                Create: IO_STACK_LOCATION_CREATE::new(
                    std::ptr::null_mut(),
                    options,
                    0,
                    FILE_SHARE_READ | FILE_SHARE_WRITE,
                    0,
                ),
            },
            mode: g.requestor_mode(cx.me),
            holds_file_ref: false,
            user_event: 0,
            code: 0,
            buffered: false,
            neither: false,
            input: Vec::new(),
            output_len: 0,
        };
        (dev, file, spec)
    };
    let (_, status) = call_driver_and_wait(&cx, spec);
    let mut g = cx.lock();
    if !NT_SUCCESS(status) {
        // The open failed: no CLEANUP, no CLOSE; the file object goes, and with it the device
        // reference.
        g.objects.objects.remove(&file);
        let info = g.iomgr.files.remove(&file).expect("the file being opened");
        drop(info);
        drop(g);
        super::close::drop_device_reference(&cx, dev);
        return Err(status);
    }
    let pid = g.threads.process_of(cx.me);
    // SAFETY: the file object is live (the open succeeded).
    unsafe { (*g.file_object(file)).Flags |= FO_HANDLE_CREATED };
    g.iomgr.files.get_mut(&file).expect("open").handles = 1;
    let h = g.insert_handle(pid, file, FILE_GENERIC_READ | FILE_GENERIC_WRITE);
    debug_assert_eq!(STATUS_SUCCESS, 0);
    Ok(Handle(h as usize))
}

/// Takes the FO_SYNCHRONOUS_IO lock of `file` for the running thread (IopAcquireFileObjectLock:
/// the `Busy` flag, `Waiters` and the `Lock` event of the real FILE_OBJECT). With
/// `interruptible`, the wait is a user-mode wait.
pub(crate) fn acquire_file_lock(
    cx: &Cx,
    file: usize,
    interruptible: bool,
) -> Result<(), Terminated> {
    loop {
        let lock_event = {
            let mut g = cx.lock();
            let fo = g.file_object(file);
            // SAFETY: a live file object; only the baton holder touches Busy/Waiters.
            let f = unsafe { &mut *fo };
            if f.Busy == 0 {
                f.Busy = 1;
                g.iomgr.files.get_mut(&file).expect("open").lock_owner = Some(cx.me);
                return Ok(());
            }
            f.Waiters += 1;
            &raw mut f.Lock as usize
        };
        let r = if interruptible {
            user_wait(cx, vec![lock_event], None).map(|_| ())
        } else {
            crate::wait::wait_objects("IopAcquireFileObjectLock", vec![lock_event], false, None);
            Ok(())
        };
        let g = cx.lock();
        // SAFETY: as above.
        unsafe { (*g.file_object(file)).Waiters -= 1 };
        r?;
    }
}

/// Releases the FO_SYNCHRONOUS_IO lock of `file` and wakes one waiter.
pub(crate) fn release_file_lock(g: &mut World, file: usize) {
    let Some(info) = g.iomgr.files.get_mut(&file) else {
        return;
    };
    info.lock_owner = None;
    let fo = info.storage.ptr();
    // SAFETY: a live file object.
    let f = unsafe { &mut *fo };
    f.Busy = 0;
    if f.Waiters > 0 {
        let ev = &raw mut f.Lock as usize;
        crate::wait::set_signal_state(ev, 1);
        g.signal_object(ev);
    }
}

/// Releases every file-object lock `actor` still holds (its exit path).
pub(crate) fn release_locks_of(cx: &Cx, actor: ActorId) {
    let mut g = cx.lock();
    let held: Vec<usize> = g
        .iomgr
        .files
        .iter()
        .filter(|(_, f)| f.lock_owner == Some(actor))
        .map(|(&k, _)| k)
        .collect();
    for f in held {
        release_file_lock(&mut g, f);
    }
}
