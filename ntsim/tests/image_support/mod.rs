//! A minimal PE32+ builder and x64 emitter for the loader's tests: one RWX section holding code,
//! data, the import directory and the base relocations, laid out at fixed RVAs.

#![allow(dead_code)]

/// The preferred base the test images are linked at (never where the host maps them).
pub const BASE: u64 = 0x1_4000_0000;
/// RVA of the code (the entry point is its first byte).
pub const CODE: u32 = 0x1000;
/// RVA of the data area.
pub const DATA: u32 = 0x1400;
const IMPORTS: u32 = 0x1800;
const RELOCS: u32 = 0x1E00;
const SECTION: u32 = 0x1000;
const SECTION_SIZE: u32 = 0x1000;
const RAW: u32 = 0x200;
const SIZE_OF_IMAGE: u32 = SECTION + SECTION_SIZE;

/// One import: by name or by ordinal.
#[derive(Clone, Debug)]
pub enum Imp {
    Name(String),
    Ordinal(u16),
}

/// Imports grouped by DLL: (DLL, [(index, import)], offset of its table).
type Groups = Vec<(String, Vec<(usize, Imp)>, u32)>;

/// What the test image holds.
#[derive(Clone, Debug)]
pub struct Pe {
    pub machine: u16,
    pub imports: Vec<(String, Imp)>,
    pub code: Vec<u8>,
    pub data: Vec<u8>,
    /// RVAs of 64-bit values to relocate, with the relocation type (10 = DIR64).
    pub relocs: Vec<(u32, u16)>,
}

impl Default for Pe {
    fn default() -> Self {
        Pe {
            machine: 0x8664,
            imports: Vec::new(),
            code: vec![0x31, 0xC0, 0xC3], // xor eax, eax; ret
            data: Vec::new(),
            relocs: Vec::new(),
        }
    }
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

impl Pe {
    /// An image importing `names` from ntoskrnl.exe.
    pub fn importing(names: &[&str]) -> Pe {
        Pe {
            imports: names
                .iter()
                .map(|n| ("ntoskrnl.exe".to_string(), Imp::Name(n.to_string())))
                .collect(),
            ..Pe::default()
        }
    }

    fn dlls(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for (d, _) in &self.imports {
            if !v.contains(d) {
                v.push(d.clone());
            }
        }
        v
    }

    /// (ILT/IAT index, hint/name RVA) of every import, grouped by DLL; and the RVA of each
    /// DLL's table.
    fn layout(&self) -> (Groups, u32, u32, u32) {
        let ilt = IMPORTS + 0x100;
        let iat = IMPORTS + 0x200;
        let names = IMPORTS + 0x300;
        let mut groups = Vec::new();
        let mut slot = 0u32;
        for d in self.dlls() {
            let entries: Vec<(usize, Imp)> = self
                .imports
                .iter()
                .enumerate()
                .filter(|(_, (dd, _))| *dd == d)
                .map(|(i, (_, imp))| (i, imp.clone()))
                .collect();
            let n = entries.len() as u32;
            groups.push((d, entries, slot));
            slot += (n + 1) * 8;
        }
        (groups, ilt, iat, names)
    }

    /// RVA of the IAT slot of `name` (imported from any DLL).
    pub fn iat(&self, name: &str) -> u32 {
        let (groups, _, iat, _) = self.layout();
        for (_, entries, start) in groups {
            for (k, (_, imp)) in entries.iter().enumerate() {
                if matches!(imp, Imp::Name(n) if n == name) {
                    return iat + start + 8 * k as u32;
                }
            }
        }
        panic!("{name} is not imported");
    }

    /// Stores a pointer to `DATA + target` at `DATA + at`, relocated (DIR64).
    pub fn pointer(&mut self, at: usize, target: u32) {
        self.put_data(at, &(BASE + u64::from(DATA + target)).to_le_bytes());
        self.relocs.push((DATA + at as u32, 10));
    }

    /// Writes bytes into the data area.
    pub fn put_data(&mut self, at: usize, bytes: &[u8]) {
        if self.data.len() < at + bytes.len() {
            self.data.resize(at + bytes.len(), 0);
        }
        self.data[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// The file bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0u8; (RAW + SECTION_SIZE) as usize];
        // DOS header.
        put(&mut f, 0, b"MZ");
        put(&mut f, 0x3C, &0x80u32.to_le_bytes());
        // PE signature and file header.
        let pe = 0x80;
        put(&mut f, pe, b"PE\0\0");
        let fh = pe + 4;
        put(&mut f, fh, &self.machine.to_le_bytes());
        put(&mut f, fh + 2, &1u16.to_le_bytes()); // sections
        put(&mut f, fh + 16, &240u16.to_le_bytes()); // SizeOfOptionalHeader
        put(&mut f, fh + 18, &0x22u16.to_le_bytes());
        // Optional header (PE32+).
        let opt = fh + 20;
        put(&mut f, opt, &0x20Bu16.to_le_bytes());
        put(&mut f, opt + 16, &CODE.to_le_bytes()); // entry point
        put(&mut f, opt + 24, &BASE.to_le_bytes());
        put(&mut f, opt + 32, &0x1000u32.to_le_bytes()); // section alignment
        put(&mut f, opt + 36, &0x200u32.to_le_bytes()); // file alignment
        put(&mut f, opt + 56, &SIZE_OF_IMAGE.to_le_bytes());
        put(&mut f, opt + 60, &RAW.to_le_bytes()); // SizeOfHeaders
        put(&mut f, opt + 68, &1u16.to_le_bytes()); // NATIVE
        put(&mut f, opt + 108, &16u32.to_le_bytes());
        let dirs = opt + 112;
        if !self.imports.is_empty() {
            put(&mut f, dirs + 8, &IMPORTS.to_le_bytes());
            put(
                &mut f,
                dirs + 12,
                &(((self.dlls().len() + 1) * 20) as u32).to_le_bytes(),
            );
        }
        if !self.relocs.is_empty() {
            put(&mut f, dirs + 40, &RELOCS.to_le_bytes());
            put(
                &mut f,
                dirs + 44,
                &self.reloc_block().len().to_le_bytes()[..4],
            );
        }
        // Section header.
        let sh = opt + 240;
        put(&mut f, sh, b".text\0\0\0");
        put(&mut f, sh + 8, &SECTION_SIZE.to_le_bytes());
        put(&mut f, sh + 12, &SECTION.to_le_bytes());
        put(&mut f, sh + 16, &SECTION_SIZE.to_le_bytes());
        put(&mut f, sh + 20, &RAW.to_le_bytes());
        put(&mut f, sh + 36, &0xE000_0060u32.to_le_bytes());
        // Section contents (file offset = RVA - SECTION + RAW).
        let off = |rva: u32| (rva - SECTION + RAW) as usize;
        put(&mut f, off(CODE), &self.code);
        put(&mut f, off(DATA), &self.data);
        let (groups, ilt, iat, names) = self.layout();
        let mut name_at = names;
        for (g, (dll, entries, start)) in groups.iter().enumerate() {
            let desc = off(IMPORTS) + 20 * g;
            for (k, (_, imp)) in entries.iter().enumerate() {
                let entry: u64 = match imp {
                    Imp::Ordinal(o) => (1u64 << 63) | u64::from(*o),
                    Imp::Name(n) => {
                        let at = name_at;
                        put(&mut f, off(at) + 2, n.as_bytes());
                        name_at += (2 + n.len() as u32 + 1 + 1) & !1;
                        u64::from(at)
                    }
                };
                let slot = start + 8 * k as u32;
                put(&mut f, off(ilt + slot), &entry.to_le_bytes());
                put(&mut f, off(iat + slot), &entry.to_le_bytes());
            }
            let dll_at = name_at;
            put(&mut f, off(dll_at), dll.as_bytes());
            name_at += dll.len() as u32 + 1;
            put(&mut f, desc, &(ilt + start).to_le_bytes());
            put(&mut f, desc + 12, &dll_at.to_le_bytes());
            put(&mut f, desc + 16, &(iat + start).to_le_bytes());
        }
        put(&mut f, off(RELOCS), &self.reloc_block());
        f
    }

    fn reloc_block(&self) -> Vec<u8> {
        if self.relocs.is_empty() {
            return Vec::new();
        }
        let mut entries: Vec<u16> = self
            .relocs
            .iter()
            .map(|&(rva, kind)| (kind << 12) | ((rva - SECTION) as u16 & 0xFFF))
            .collect();
        if entries.len() % 2 == 1 {
            entries.push(0); // ABSOLUTE padding to a 4-byte boundary
        }
        let mut b = Vec::new();
        b.extend_from_slice(&SECTION.to_le_bytes());
        b.extend_from_slice(&((8 + 2 * entries.len()) as u32).to_le_bytes());
        for e in entries {
            b.extend_from_slice(&e.to_le_bytes());
        }
        b
    }
}

/// A tiny x64 emitter for code placed at `CODE + start` (RIP-relative operands take RVAs).
#[derive(Debug, Default)]
pub struct Asm {
    pub start: u32,
    pub bytes: Vec<u8>,
}

impl Asm {
    /// Code placed at `CODE + start`.
    pub fn at(start: u32) -> Asm {
        Asm {
            start,
            bytes: Vec::new(),
        }
    }

    fn here(&self) -> u32 {
        CODE + self.start + self.bytes.len() as u32
    }

    fn rip(&mut self, opcode: &[u8], target: u32) -> &mut Self {
        let end = self.here() + opcode.len() as u32 + 4;
        let disp = target as i64 - end as i64;
        self.bytes.extend_from_slice(opcode);
        self.bytes.extend_from_slice(&(disp as i32).to_le_bytes());
        self
    }

    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(b);
        self
    }

    /// Function prologue: `sub rsp, 0x28` (shadow space + alignment).
    pub fn enter(&mut self) -> &mut Self {
        self.raw(&[0x48, 0x83, 0xEC, 0x28])
    }
    /// Epilogue: `add rsp, 0x28; ret`.
    pub fn leave(&mut self) -> &mut Self {
        self.raw(&[0x48, 0x83, 0xC4, 0x28, 0xC3])
    }
    /// `mov eax, imm`.
    pub fn mov_eax(&mut self, imm: u32) -> &mut Self {
        self.raw(&[0xB8]).raw(&imm.to_le_bytes())
    }
    /// `mov ecx, imm` (zero-extends into RCX).
    pub fn mov_ecx(&mut self, imm: u32) -> &mut Self {
        self.raw(&[0xB9]).raw(&imm.to_le_bytes())
    }
    /// `mov edx, imm`.
    pub fn mov_edx(&mut self, imm: u32) -> &mut Self {
        self.raw(&[0xBA]).raw(&imm.to_le_bytes())
    }
    /// `mov r8d, imm`.
    pub fn mov_r8d(&mut self, imm: u32) -> &mut Self {
        self.raw(&[0x41, 0xB8]).raw(&imm.to_le_bytes())
    }
    /// `mov r9d, imm`.
    pub fn mov_r9d(&mut self, imm: u32) -> &mut Self {
        self.raw(&[0x41, 0xB9]).raw(&imm.to_le_bytes())
    }
    /// `mov qword [rsp + disp], imm` (a stack argument: the fifth is at 0x20).
    pub fn mov_stack(&mut self, disp: u8, imm: u32) -> &mut Self {
        self.raw(&[0x48, 0xC7, 0x44, 0x24, disp])
            .raw(&imm.to_le_bytes())
    }
    /// `mov rcx, [rip -> rva]`.
    pub fn load_rcx(&mut self, rva: u32) -> &mut Self {
        self.rip(&[0x48, 0x8B, 0x0D], rva)
    }
    /// `mov rdx, [rip -> rva]`.
    pub fn load_rdx(&mut self, rva: u32) -> &mut Self {
        self.rip(&[0x48, 0x8B, 0x15], rva)
    }
    /// `lea rcx, [rip -> rva]`.
    pub fn lea_rcx(&mut self, rva: u32) -> &mut Self {
        self.rip(&[0x48, 0x8D, 0x0D], rva)
    }
    /// `lea rax, [rip -> rva]`.
    pub fn lea_rax(&mut self, rva: u32) -> &mut Self {
        self.rip(&[0x48, 0x8D, 0x05], rva)
    }
    /// `mov [rcx + disp], rax`.
    pub fn store_rax_at_rcx(&mut self, disp: u8) -> &mut Self {
        self.raw(&[0x48, 0x89, 0x41, disp])
    }
    /// `mov rdx, rcx`.
    pub fn mov_rdx_rcx(&mut self) -> &mut Self {
        self.raw(&[0x48, 0x89, 0xCA])
    }
    /// `mov rcx, rax`.
    pub fn mov_rcx_rax(&mut self) -> &mut Self {
        self.raw(&[0x48, 0x89, 0xC1])
    }
    /// `ret`.
    pub fn raw_ret(&mut self) -> &mut Self {
        self.raw(&[0xC3])
    }
    /// `call [rip -> rva]` (an import through its IAT slot).
    pub fn call_import(&mut self, iat_rva: u32) -> &mut Self {
        self.rip(&[0xFF, 0x15], iat_rva)
    }
}

/// Places `parts` (each an [`Asm`] with its start) into one code blob.
pub fn code(parts: &[&Asm]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts {
        let at = p.start as usize;
        if v.len() < at + p.bytes.len() {
            v.resize(at + p.bytes.len(), 0xCC);
        }
        v[at..at + p.bytes.len()].copy_from_slice(&p.bytes);
    }
    v
}
