//! The PE32+ parser: headers, sections, DIR64 base relocations and the import directory of an
//! x64 kernel image, read from its file bytes. Pure: it allocates nothing executable and runs on
//! any host, so the loader's tests can build a PE in memory and check every field.
//!
//! Only what a WDM driver image holds is accepted: machine AMD64, the PE32+ optional header,
//! relocations of type ABSOLUTE (padding) and DIR64, imports by name or by ordinal (the latter
//! are kept so that the resolver can refuse them by name).

use super::LoadError;

/// `IMAGE_FILE_MACHINE_AMD64`.
pub const MACHINE_AMD64: u16 = 0x8664;
/// `IMAGE_NT_OPTIONAL_HDR64_MAGIC`.
pub const PE32_PLUS_MAGIC: u16 = 0x20B;
/// `IMAGE_REL_BASED_ABSOLUTE`: padding in a relocation block.
pub const REL_BASED_ABSOLUTE: u16 = 0;
/// `IMAGE_REL_BASED_DIR64`: add the load delta to the 64-bit value at the address.
pub const REL_BASED_DIR64: u16 = 10;
/// `IMAGE_DIRECTORY_ENTRY_IMPORT`.
pub const DIR_IMPORT: usize = 1;
/// `IMAGE_DIRECTORY_ENTRY_BASERELOC`.
pub const DIR_BASERELOC: usize = 5;
/// `IMAGE_ORDINAL_FLAG64`: the import lookup entry is an ordinal, not a name.
pub const ORDINAL_FLAG64: u64 = 1 << 63;

/// Size of the COFF file header.
const FILE_HEADER_SIZE: usize = 20;
/// Offset of the data directories in the PE32+ optional header.
const DATA_DIRECTORIES_OFFSET: usize = 112;
/// Size of one section header.
const SECTION_HEADER_SIZE: usize = 40;
/// Size of one import descriptor.
const IMPORT_DESCRIPTOR_SIZE: usize = 20;

/// One section header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The name (up to 8 bytes, NUL padding removed).
    pub name: String,
    /// Where it goes in the mapped image.
    pub virtual_address: u32,
    /// Its size in memory (0 in some linkers' output: then `raw_size` counts).
    pub virtual_size: u32,
    /// Where its bytes are in the file.
    pub raw_offset: u32,
    /// How many bytes the file holds (the rest, up to `virtual_size`, is zero).
    pub raw_size: u32,
    /// `IMAGE_SCN_*` flags.
    pub characteristics: u32,
}

impl Section {
    /// The size the section takes in memory.
    pub fn mapped_size(&self) -> u32 {
        if self.virtual_size == 0 {
            self.raw_size
        } else {
            self.virtual_size
        }
    }
}

/// What an import names in its DLL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportName {
    /// By name (the usual case).
    Name(String),
    /// By ordinal (ntsim resolves names only, so it refuses these).
    Ordinal(u16),
}

/// One imported symbol and the IAT slot the loader fills for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The DLL as the image spells it (`ntoskrnl.exe`, `HAL.dll`).
    pub dll: String,
    /// The symbol.
    pub name: ImportName,
    /// RVA of its 8-byte slot in the import address table.
    pub iat_rva: u32,
}

impl Import {
    /// `dll!name` (or `dll!#ordinal`), as error messages show it.
    pub fn display_name(&self) -> String {
        match &self.name {
            ImportName::Name(n) => format!("{}!{n}", self.dll),
            ImportName::Ordinal(o) => format!("{}!#{o} (by ordinal)", self.dll),
        }
    }
}

/// A parsed PE32+ image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeFile {
    /// The preferred load address.
    pub image_base: u64,
    /// Bytes the mapped image spans.
    pub size_of_image: u32,
    /// Bytes of headers (copied to the start of the mapping).
    pub size_of_headers: u32,
    /// RVA of the entry point (DriverEntry for a driver; 0 if none).
    pub entry_point: u32,
    /// `IMAGE_SUBSYSTEM_*` (1 = NATIVE for drivers).
    pub subsystem: u16,
    /// The sections, in header order.
    pub sections: Vec<Section>,
    /// RVAs of the 64-bit values that DIR64 relocations adjust.
    pub relocations: Vec<u32>,
    /// Every import, in directory order.
    pub imports: Vec<Import>,
}

fn bad(what: impl Into<String>) -> LoadError {
    LoadError::Malformed(what.into())
}

/// Little-endian readers over the file with bounds checks that name what was being read.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn bytes(&self, off: usize, len: usize, what: &str) -> Result<&[u8], LoadError> {
        off.checked_add(len)
            .and_then(|end| self.data.get(off..end))
            .ok_or_else(|| {
                bad(format!(
                    "{what} at file offset {off:#x} lies outside the file"
                ))
            })
    }
    fn u16(&self, off: usize, what: &str) -> Result<u16, LoadError> {
        let b = self.bytes(off, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, off: usize, what: &str) -> Result<u32, LoadError> {
        let b = self.bytes(off, 4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&self, off: usize, what: &str) -> Result<u64, LoadError> {
        let b = self.bytes(off, 8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    /// A NUL-terminated ASCII string.
    fn cstr(&self, off: usize, what: &str) -> Result<String, LoadError> {
        let rest = self.data.get(off..).ok_or_else(|| {
            bad(format!(
                "{what} at file offset {off:#x} lies outside the file"
            ))
        })?;
        let len = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            bad(format!(
                "{what} at file offset {off:#x} is not NUL-terminated"
            ))
        })?;
        Ok(String::from_utf8_lossy(&rest[..len]).into_owned())
    }
}

impl PeFile {
    /// Parses `data`, the bytes of a `.sys` file.
    ///
    /// # Errors
    /// [`LoadError::Malformed`] for anything that is not a well-formed PE32+ image,
    /// [`LoadError::UnsupportedMachine`] for another machine type and
    /// [`LoadError::UnsupportedRelocation`] for a relocation type other than DIR64.
    pub fn parse(data: &[u8]) -> Result<PeFile, LoadError> {
        let r = Reader { data };
        if r.bytes(0, 2, "DOS header")? != b"MZ" {
            return Err(bad("no MZ signature (not a PE image)"));
        }
        let pe = r.u32(0x3C, "e_lfanew")? as usize;
        if r.bytes(pe, 4, "PE signature")? != b"PE\0\0" {
            return Err(bad("no PE signature at e_lfanew"));
        }
        let fh = pe + 4;
        let machine = r.u16(fh, "Machine")?;
        if machine != MACHINE_AMD64 {
            return Err(LoadError::UnsupportedMachine(machine));
        }
        let nsections = r.u16(fh + 2, "NumberOfSections")? as usize;
        let opt_size = r.u16(fh + 16, "SizeOfOptionalHeader")? as usize;
        let opt = fh + FILE_HEADER_SIZE;
        if r.u16(opt, "optional header magic")? != PE32_PLUS_MAGIC {
            return Err(bad("the optional header is not PE32+ (magic 0x20B)"));
        }
        let entry_point = r.u32(opt + 16, "AddressOfEntryPoint")?;
        let image_base = r.u64(opt + 24, "ImageBase")?;
        let size_of_image = r.u32(opt + 56, "SizeOfImage")?;
        let size_of_headers = r.u32(opt + 60, "SizeOfHeaders")?;
        let subsystem = r.u16(opt + 68, "Subsystem")?;
        let ndirs = r.u32(opt + 108, "NumberOfRvaAndSizes")? as usize;
        if opt_size < DATA_DIRECTORIES_OFFSET + 8 * ndirs.min(16) {
            return Err(bad(
                "SizeOfOptionalHeader is too small for its data directories",
            ));
        }
        let dir = |i: usize| -> Result<(u32, u32), LoadError> {
            if i >= ndirs {
                return Ok((0, 0));
            }
            let at = opt + DATA_DIRECTORIES_OFFSET + 8 * i;
            Ok((
                r.u32(at, "data directory")?,
                r.u32(at + 4, "data directory")?,
            ))
        };

        let mut sections = Vec::with_capacity(nsections);
        let sh = opt + opt_size;
        for i in 0..nsections {
            let at = sh + i * SECTION_HEADER_SIZE;
            let raw_name = r.bytes(at, 8, "section name")?;
            let name_len = raw_name.iter().position(|&b| b == 0).unwrap_or(8);
            let s = Section {
                name: String::from_utf8_lossy(&raw_name[..name_len]).into_owned(),
                virtual_size: r.u32(at + 8, "VirtualSize")?,
                virtual_address: r.u32(at + 12, "VirtualAddress")?,
                raw_size: r.u32(at + 16, "SizeOfRawData")?,
                raw_offset: r.u32(at + 20, "PointerToRawData")?,
                characteristics: r.u32(at + 36, "section Characteristics")?,
            };
            let end = u64::from(s.virtual_address) + u64::from(s.mapped_size());
            if end > u64::from(size_of_image) {
                return Err(bad(format!(
                    "section {} ends at RVA {end:#x}, beyond SizeOfImage {size_of_image:#x}",
                    s.name
                )));
            }
            r.bytes(
                s.raw_offset as usize,
                s.raw_size.min(s.mapped_size()) as usize,
                &format!("section {}'s raw data", s.name),
            )?;
            sections.push(s);
        }
        if u64::from(size_of_headers) > u64::from(size_of_image) {
            return Err(bad("SizeOfHeaders is larger than SizeOfImage"));
        }
        let mut file = PeFile {
            image_base,
            size_of_image,
            size_of_headers,
            entry_point,
            subsystem,
            sections,
            relocations: Vec::new(),
            imports: Vec::new(),
        };
        let (reloc_rva, reloc_size) = dir(DIR_BASERELOC)?;
        file.relocations = file.parse_relocations(&r, reloc_rva, reloc_size)?;
        let (import_rva, _) = dir(DIR_IMPORT)?;
        file.imports = file.parse_imports(&r, import_rva)?;
        Ok(file)
    }

    /// The file offset of the byte at `rva`, if the file holds it (headers or a section's raw
    /// data).
    pub fn rva_to_offset(&self, rva: u32) -> Option<usize> {
        if rva < self.size_of_headers {
            return Some(rva as usize);
        }
        self.sections.iter().find_map(|s| {
            let delta = rva.checked_sub(s.virtual_address)?;
            (delta < s.raw_size.min(s.mapped_size())).then(|| (s.raw_offset + delta) as usize)
        })
    }

    fn offset(&self, rva: u32, what: &str) -> Result<usize, LoadError> {
        self.rva_to_offset(rva)
            .ok_or_else(|| bad(format!("{what} at RVA {rva:#x} is not backed by the file")))
    }

    fn parse_relocations(
        &self,
        r: &Reader<'_>,
        rva: u32,
        size: u32,
    ) -> Result<Vec<u32>, LoadError> {
        let mut out = Vec::new();
        if rva == 0 || size == 0 {
            return Ok(out);
        }
        let base = self.offset(rva, "relocation directory")?;
        let mut pos = 0usize;
        while pos + 8 <= size as usize {
            let page = r.u32(base + pos, "relocation block")?;
            let block = r.u32(base + pos + 4, "relocation block size")? as usize;
            if block < 8 || pos + block > size as usize {
                return Err(bad(format!(
                    "relocation block at RVA {page:#x} has size {block}"
                )));
            }
            for i in 0..(block - 8) / 2 {
                let e = r.u16(base + pos + 8 + 2 * i, "relocation entry")?;
                let (kind, off) = (e >> 12, u32::from(e & 0xFFF));
                match kind {
                    REL_BASED_ABSOLUTE => {}
                    REL_BASED_DIR64 => {
                        let at = page + off;
                        if u64::from(at) + 8 > u64::from(self.size_of_image) {
                            return Err(bad(format!(
                                "DIR64 relocation at RVA {at:#x} lies outside the image"
                            )));
                        }
                        out.push(at);
                    }
                    other => {
                        return Err(LoadError::UnsupportedRelocation {
                            rva: page + off,
                            kind: other,
                        });
                    }
                }
            }
            pos += block;
        }
        Ok(out)
    }

    fn parse_imports(&self, r: &Reader<'_>, rva: u32) -> Result<Vec<Import>, LoadError> {
        let mut out = Vec::new();
        if rva == 0 {
            return Ok(out);
        }
        let mut desc = self.offset(rva, "import directory")?;
        loop {
            let lookup = r.u32(desc, "import descriptor")?;
            let name_rva = r.u32(desc + 12, "import descriptor")?;
            let iat = r.u32(desc + 16, "import descriptor")?;
            if lookup == 0 && name_rva == 0 && iat == 0 {
                break;
            }
            let dll = r.cstr(
                self.offset(name_rva, "imported DLL name")?,
                "imported DLL name",
            )?;
            // Without an import lookup table, the IAT itself holds the names until bound.
            let table = if lookup != 0 { lookup } else { iat };
            let mut i = 0u32;
            loop {
                let entry_rva = table + 8 * i;
                let entry = r.u64(
                    self.offset(entry_rva, "import lookup entry")?,
                    "import lookup entry",
                )?;
                if entry == 0 {
                    break;
                }
                let name = if entry & ORDINAL_FLAG64 != 0 {
                    ImportName::Ordinal(entry as u16)
                } else {
                    let hint_name = self.offset(entry as u32, "import hint/name")?;
                    ImportName::Name(r.cstr(hint_name + 2, "import name")?)
                };
                let iat_rva = iat + 8 * i;
                if u64::from(iat_rva) + 8 > u64::from(self.size_of_image) {
                    return Err(bad(format!(
                        "IAT slot at RVA {iat_rva:#x} lies outside the image"
                    )));
                }
                out.push(Import {
                    dll: dll.clone(),
                    name,
                    iat_rva,
                });
                i += 1;
            }
            desc += IMPORT_DESCRIPTOR_SIZE;
        }
        Ok(out)
    }
}
