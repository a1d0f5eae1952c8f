//! The three copies of the devices' interface agree: eventctl's (`eventctl::interface`), the
//! csq driver's (`csq_event::interface`) and the StartIo sample's (`startio_event::interface`)
//! — the IOCTL code, the `REGISTER_EVENT` layout and types, and the device names.
#![cfg(not(windows))]

use eventctl::interface as client;

#[test]
fn the_ioctl_code_and_the_types_agree() {
    assert_eq!(client::IOCTL_REGISTER_EVENT, 0x0022_2000);
    assert_eq!(
        csq_event::interface::IOCTL_REGISTER_EVENT,
        client::IOCTL_REGISTER_EVENT
    );
    assert_eq!(
        startio_event::interface::IOCTL_REGISTER_EVENT,
        client::IOCTL_REGISTER_EVENT
    );
    assert_eq!(csq_event::interface::IRP_BASED, client::IRP_BASED);
    assert_eq!(startio_event::interface::IRP_BASED, client::IRP_BASED);
    assert_eq!(csq_event::interface::EVENT_BASED, client::EVENT_BASED);
    assert_eq!(startio_event::interface::EVENT_BASED, client::EVENT_BASED);
}

#[test]
fn the_register_event_layout_agrees() {
    let size = client::REGISTER_EVENT_SIZE as usize;
    assert_eq!(size, 24);
    assert_eq!(csq_event::interface::REGISTER_EVENT_SIZE, size);
    assert_eq!(startio_event::interface::REGISTER_EVENT_SIZE, size);
    assert_eq!(csq_event::interface::TYPE_OFFSET, client::TYPE_OFFSET);
    assert_eq!(csq_event::interface::EVENT_OFFSET, client::HANDLE_OFFSET);
    assert_eq!(
        csq_event::interface::DUE_TIME_OFFSET,
        client::DUE_TIME_OFFSET
    );
    // The encoders write the same bytes.
    let bytes = client::register_event(client::EVENT_BASED, 0x1234, -5_000_000);
    assert_eq!(
        csq_event::interface::register_event(csq_event::interface::EVENT_BASED, 0x1234, -5_000_000),
        bytes
    );
    let decoded = startio_event::interface::RegisterEvent::parse(&bytes).expect("valid");
    assert_eq!(decoded.encode(), bytes);
    assert_eq!(decoded.due_time, -5_000_000);
}

#[test]
fn the_device_names_agree() {
    assert_eq!(startio_event::interface::DOS_NAME, client::STARTIO_PATH);
    let link = |dos: &str| dos.replace(r"\DosDevices\", r"\\.\");
    assert_eq!(
        link(csq_event::interface::SERIAL_LINK),
        client::CSQ_SERIAL_PATH
    );
    assert_eq!(
        link(csq_event::interface::CONCURRENT_LINK),
        client::CSQ_CONCURRENT_PATH
    );
}
