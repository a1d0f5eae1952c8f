//! Mapping an image into the process: anonymous read-write-execute memory the size of the
//! image, the headers and sections copied to their RVAs, DIR64 relocations applied for the
//! address the host chose, and import address table slots written.

use super::LoadError;
use super::pe::PeFile;

/// An anonymous RWX mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; what lives in it (driver code and
// data) is shared by design, exactly like a kernel image.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only exposes the address.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `len` zeroed bytes, readable, writable and executable.
    fn new(len: usize) -> Result<Mapping, LoadError> {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len.max(1),
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(LoadError::Map(std::io::Error::last_os_error().to_string()));
        }
        Ok(Mapping {
            ptr: p.cast(),
            len: len.max(1),
        })
    }

    /// The address the image was mapped at.
    pub(crate) fn base(&self) -> usize {
        self.ptr as usize
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live mapping of `len` bytes owned exclusively by `self` (the
        // image has not run yet while the loader writes it).
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Writes the 8-byte import address table slot at `rva`.
    pub(crate) fn write_u64(&mut self, rva: u32, value: u64) {
        let at = rva as usize;
        self.bytes_mut()[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: mapped by `Mapping::new` with this length; nothing can run in it any more
        // (the last handle to the image is gone).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Maps `pe` (parsed from `data`): headers, sections, relocations. Imports are bound later.
pub(crate) fn map(pe: &PeFile, data: &[u8]) -> Result<Mapping, LoadError> {
    let mut m = Mapping::new(pe.size_of_image as usize)?;
    let base = m.base() as u64;
    let mem = m.bytes_mut();
    let headers = (pe.size_of_headers as usize).min(data.len());
    mem[..headers].copy_from_slice(&data[..headers]);
    for s in &pe.sections {
        // The parser checked that these ranges lie inside the file and the image.
        let n = s.raw_size.min(s.mapped_size()) as usize;
        let (va, raw) = (s.virtual_address as usize, s.raw_offset as usize);
        mem[va..va + n].copy_from_slice(&data[raw..raw + n]);
    }
    let delta = base.wrapping_sub(pe.image_base);
    for &rva in &pe.relocations {
        let at = rva as usize;
        let slot: &mut [u8; 8] = (&mut mem[at..at + 8]).try_into().expect("8 bytes");
        *slot = u64::from_le_bytes(*slot).wrapping_add(delta).to_le_bytes();
    }
    Ok(m)
}
