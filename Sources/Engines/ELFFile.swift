import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// Reading ELF headers (ELF32 and ELF64, either byte order): program headers, PT_INTERP,
/// the dynamic section and DT_RUNPATH/DT_RPATH. Only what the Fakechroot modes need.
struct ELFFile {
    struct ProgramHeader: Equatable {
        var type: UInt32
        var flags: UInt32
        var offset: UInt64
        var vaddr: UInt64
        var paddr: UInt64
        var filesz: UInt64
        var memsz: UInt64
        var align: UInt64
    }

    struct SectionHeader: Equatable {
        var index: Int
        var name: UInt32
        var type: UInt32
        var addr: UInt64
        var offset: UInt64
        var size: UInt64
    }

    struct DynamicEntry: Equatable {
        var tag: Int64
        var value: UInt64
        /// File offset of the entry (its value field is at `fileOffset + valueOffset`).
        var fileOffset: UInt64
    }

    static let PT_LOAD: UInt32 = 1, PT_DYNAMIC: UInt32 = 2, PT_INTERP: UInt32 = 3, PT_NOTE: UInt32 = 4
    static let PT_GNU_PROPERTY: UInt32 = 0x6474_e553
    static let DT_NULL: Int64 = 0, DT_STRTAB: Int64 = 5, DT_RPATH: Int64 = 15, DT_RUNPATH: Int64 = 29
    static let ET_EXEC: UInt16 = 2, ET_DYN: UInt16 = 3

    let fd: Int32
    let is64: Bool
    let littleEndian: Bool
    let type: UInt16
    let machine: UInt16
    let phoff: UInt64
    let phentsize: Int
    let phnum: Int
    let shoff: UInt64
    let shentsize: Int
    let shnum: Int
    let shstrndx: Int
    let fileSize: UInt64
    let programHeaders: [ProgramHeader]

    var headerSize: Int { is64 ? 64 : 52 }
    var dynamicEntrySize: Int { is64 ? 16 : 8 }
    var valueOffsetInDynamic: UInt64 { is64 ? 8 : 4 }

    struct FormatError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// True when the first bytes of the file at `fd` are the ELF magic.
    static func hasMagic(fd: Int32) -> Bool {
        var m = [UInt8](repeating: 0, count: 4)
        return pread(fd, &m, 4, 0) == 4 && m == [0x7f, 0x45, 0x4c, 0x46]
    }

    /// Parses the headers of the ELF file open at `fd`; nil when it is not ELF.
    init?(fd: Int32) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FormatError("fstat: \(String(cString: strerror(errno)))") }
        let size = UInt64(st.st_size)
        guard size >= 52 else { return nil }
        var h = [UInt8](repeating: 0, count: 64)
        let n = pread(fd, &h, 64, 0)
        guard n >= 52, h[0] == 0x7f, h[1] == 0x45, h[2] == 0x4c, h[3] == 0x46 else { return nil }
        guard h[4] == 1 || h[4] == 2, h[5] == 1 || h[5] == 2 else { throw FormatError("unknown ELF class or data encoding") }
        self.fd = fd
        self.fileSize = size
        is64 = h[4] == 2
        littleEndian = h[5] == 1
        if is64 && n < 64 { throw FormatError("truncated ELF header") }
        let le = littleEndian
        type = Self.u16(h, 16, le)
        machine = Self.u16(h, 18, le)
        if is64 {
            phoff = Self.u64(h, 32, le); shoff = Self.u64(h, 40, le)
            phentsize = Int(Self.u16(h, 54, le)); phnum = Int(Self.u16(h, 56, le))
            shentsize = Int(Self.u16(h, 58, le)); shnum = Int(Self.u16(h, 60, le)); shstrndx = Int(Self.u16(h, 62, le))
        } else {
            phoff = UInt64(Self.u32(h, 28, le)); shoff = UInt64(Self.u32(h, 32, le))
            phentsize = Int(Self.u16(h, 42, le)); phnum = Int(Self.u16(h, 44, le))
            shentsize = Int(Self.u16(h, 46, le)); shnum = Int(Self.u16(h, 48, le)); shstrndx = Int(Self.u16(h, 50, le))
        }
        let expected = is64 ? 56 : 32
        if phnum > 0 {
            guard phentsize == expected, phoff < size, phoff + UInt64(phnum * phentsize) <= size else {
                throw FormatError("bad program header table")
            }
        }
        var table = [UInt8](repeating: 0, count: phnum * phentsize)
        if phnum > 0 {
            guard pread(fd, &table, table.count, off_t(phoff)) == table.count else { throw FormatError("short read of program headers") }
        }
        var phs: [ProgramHeader] = []
        for i in 0..<phnum { phs.append(Self.decodePH(table, i * phentsize, is64: is64, le: le)) }
        programHeaders = phs
    }

    // MARK: byte helpers

    static func u16(_ b: [UInt8], _ o: Int, _ le: Bool) -> UInt16 {
        le ? UInt16(b[o]) | UInt16(b[o + 1]) << 8 : UInt16(b[o]) << 8 | UInt16(b[o + 1])
    }
    static func u32(_ b: [UInt8], _ o: Int, _ le: Bool) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(b[o + i]) << (le ? 8 * i : 8 * (3 - i)) }
        return v
    }
    static func u64(_ b: [UInt8], _ o: Int, _ le: Bool) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(b[o + i]) << (le ? 8 * i : 8 * (7 - i)) }
        return v
    }
    static func put32(_ b: inout [UInt8], _ o: Int, _ v: UInt32, _ le: Bool) {
        for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (le ? 8 * i : 8 * (3 - i))) }
    }
    static func put64(_ b: inout [UInt8], _ o: Int, _ v: UInt64, _ le: Bool) {
        for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (le ? 8 * i : 8 * (7 - i))) }
    }
    /// A word (4 or 8 bytes) in the file's class and byte order.
    func word(_ v: UInt64) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: is64 ? 8 : 4)
        if is64 { Self.put64(&b, 0, v, littleEndian) } else { Self.put32(&b, 0, UInt32(truncatingIfNeeded: v), littleEndian) }
        return b
    }

    static func decodePH(_ b: [UInt8], _ o: Int, is64: Bool, le: Bool) -> ProgramHeader {
        if is64 {
            return ProgramHeader(
                type: u32(b, o, le), flags: u32(b, o + 4, le), offset: u64(b, o + 8, le),
                vaddr: u64(b, o + 16, le), paddr: u64(b, o + 24, le), filesz: u64(b, o + 32, le),
                memsz: u64(b, o + 40, le), align: u64(b, o + 48, le))
        }
        return ProgramHeader(
            type: u32(b, o, le), flags: u32(b, o + 24, le), offset: UInt64(u32(b, o + 4, le)),
            vaddr: UInt64(u32(b, o + 8, le)), paddr: UInt64(u32(b, o + 12, le)),
            filesz: UInt64(u32(b, o + 16, le)), memsz: UInt64(u32(b, o + 20, le)),
            align: UInt64(u32(b, o + 28, le)))
    }

    func encode(_ p: ProgramHeader) -> [UInt8] {
        let le = littleEndian
        var b = [UInt8](repeating: 0, count: phentsize)
        if is64 {
            Self.put32(&b, 0, p.type, le); Self.put32(&b, 4, p.flags, le)
            Self.put64(&b, 8, p.offset, le); Self.put64(&b, 16, p.vaddr, le); Self.put64(&b, 24, p.paddr, le)
            Self.put64(&b, 32, p.filesz, le); Self.put64(&b, 40, p.memsz, le); Self.put64(&b, 48, p.align, le)
        } else {
            Self.put32(&b, 0, p.type, le); Self.put32(&b, 4, UInt32(truncatingIfNeeded: p.offset), le)
            Self.put32(&b, 8, UInt32(truncatingIfNeeded: p.vaddr), le); Self.put32(&b, 12, UInt32(truncatingIfNeeded: p.paddr), le)
            Self.put32(&b, 16, UInt32(truncatingIfNeeded: p.filesz), le); Self.put32(&b, 20, UInt32(truncatingIfNeeded: p.memsz), le)
            Self.put32(&b, 24, p.flags, le); Self.put32(&b, 28, UInt32(truncatingIfNeeded: p.align), le)
        }
        return b
    }

    // MARK: reading content

    func readBytes(_ offset: UInt64, _ count: Int) -> [UInt8]? {
        guard count >= 0, offset <= fileSize, offset + UInt64(count) <= fileSize else { return nil }
        var b = [UInt8](repeating: 0, count: count)
        if count == 0 { return b }
        return pread(fd, &b, count, off_t(offset)) == count ? b : nil
    }

    /// A NUL-terminated string at a file offset (at most `limit` bytes).
    func readCString(_ offset: UInt64, limit: Int = 4096) -> String? {
        guard offset < fileSize else { return nil }
        let n = Int(min(UInt64(limit), fileSize - offset))
        guard let b = readBytes(offset, n), let end = b.firstIndex(of: 0) else { return nil }
        return String(decoding: b[..<end], as: UTF8.self)
    }

    /// The file offset holding virtual address `vaddr` (inside some PT_LOAD's file image).
    func fileOffset(ofVirtualAddress vaddr: UInt64) -> UInt64? {
        for p in programHeaders where p.type == Self.PT_LOAD && vaddr >= p.vaddr && vaddr - p.vaddr < p.filesz {
            // Hostile headers: offsets near 2^64 must not trap (`&+`; readBytes bounds the result).
            let (off, overflow) = p.offset.addingReportingOverflow(vaddr - p.vaddr)
            return overflow ? nil : off
        }
        return nil
    }

    /// PT_INTERP's string, or nil when there is none.
    var interpreter: String? {
        guard let p = programHeaders.first(where: { $0.type == Self.PT_INTERP }), p.filesz > 0, p.filesz < 4096 else { return nil }
        guard let b = readBytes(p.offset, Int(p.filesz)) else { return nil }
        let end = b.firstIndex(of: 0) ?? b.count
        return String(decoding: b[..<end], as: UTF8.self)
    }

    /// The dynamic section's entries up to DT_NULL.
    var dynamicEntries: [DynamicEntry] {
        guard let p = programHeaders.first(where: { $0.type == Self.PT_DYNAMIC }), p.filesz > 0,
            p.filesz < 1 << 20, let b = readBytes(p.offset, Int(p.filesz))
        else { return [] }
        var out: [DynamicEntry] = []
        var o = 0
        while o + dynamicEntrySize <= b.count {
            let tag: Int64, val: UInt64
            if is64 {
                tag = Int64(bitPattern: Self.u64(b, o, littleEndian)); val = Self.u64(b, o + 8, littleEndian)
            } else {
                tag = Int64(Int32(bitPattern: Self.u32(b, o, littleEndian))); val = UInt64(Self.u32(b, o + 4, littleEndian))
            }
            if tag == Self.DT_NULL { break }
            out.append(DynamicEntry(tag: tag, value: val, fileOffset: p.offset + UInt64(o)))
            o += dynamicEntrySize
        }
        return out
    }

    /// DT_RUNPATH (preferred) or DT_RPATH: the entry and its string.
    var runpath: (entry: DynamicEntry, value: String)? {
        let dyn = dynamicEntries
        guard let strtab = dyn.first(where: { $0.tag == Self.DT_STRTAB })?.value else { return nil }
        guard let e = dyn.first(where: { $0.tag == Self.DT_RUNPATH }) ?? dyn.first(where: { $0.tag == Self.DT_RPATH }) else { return nil }
        guard let off = fileOffset(ofVirtualAddress: strtab &+ e.value), let s = readCString(off) else { return nil }
        return (e, s)
    }

    /// Section headers (index, name offset, type, addr, offset, size); empty when absent or invalid.
    var sectionHeaders: [SectionHeader] {
        let expected = is64 ? 64 : 40
        guard shnum > 0, shentsize == expected, shoff > 0, shoff <= fileSize, UInt64(shnum * shentsize) <= fileSize - shoff,
            let b = readBytes(shoff, shnum * shentsize)
        else { return [] }
        let le = littleEndian
        return (0..<shnum).map { i in
            let o = i * shentsize
            if is64 {
                return SectionHeader(
                    index: i, name: Self.u32(b, o, le), type: Self.u32(b, o + 4, le), addr: Self.u64(b, o + 16, le),
                    offset: Self.u64(b, o + 24, le), size: Self.u64(b, o + 32, le))
            }
            return SectionHeader(
                index: i, name: Self.u32(b, o, le), type: Self.u32(b, o + 4, le), addr: UInt64(Self.u32(b, o + 12, le)),
                offset: UInt64(Self.u32(b, o + 16, le)), size: UInt64(Self.u32(b, o + 20, le)))
        }
    }

    /// The section named `name`, if the section header string table is readable.
    func section(named name: String) -> SectionHeader? {
        let shs = sectionHeaders
        guard shstrndx > 0, shstrndx < shs.count else { return nil }
        let strtab = shs[shstrndx]
        return shs.first { readCString(strtab.offset &+ UInt64($0.name), limit: 256) == name }
    }

    /// Bytes of the section header entry `index` with addr/offset/size replaced.
    func encodeSection(_ s: SectionHeader, addr: UInt64, offset: UInt64, size: UInt64) -> (UInt64, [UInt8])? {
        let at = shoff + UInt64(s.index * shentsize)
        guard var b = readBytes(at, shentsize) else { return nil }
        let le = littleEndian
        if is64 {
            Self.put64(&b, 16, addr, le); Self.put64(&b, 24, offset, le); Self.put64(&b, 32, size, le)
        } else {
            Self.put32(&b, 12, UInt32(truncatingIfNeeded: addr), le); Self.put32(&b, 16, UInt32(truncatingIfNeeded: offset), le)
            Self.put32(&b, 20, UInt32(truncatingIfNeeded: size), le)
        }
        return (at, b)
    }

    /// Whether the PT_NOTE `p` holds a GNU property note (NT_GNU_PROPERTY_TYPE_0), which the
    /// loader may need (CET/BTI): those notes are not sacrificed.
    func noteHoldsGNUProperty(_ p: ProgramHeader) -> Bool {
        if programHeaders.contains(where: { $0.type == Self.PT_GNU_PROPERTY && $0.offset >= p.offset && $0.offset - p.offset < p.filesz }) {
            return true
        }
        guard p.filesz < 1 << 16, let b = readBytes(p.offset, Int(p.filesz)) else { return true }
        var o = 0
        let align = p.align >= 8 ? 8 : 4
        while o + 12 <= b.count {
            let namesz = Int(Self.u32(b, o, littleEndian)), descsz = Int(Self.u32(b, o + 4, littleEndian))
            let t = Self.u32(b, o + 8, littleEndian)
            if t == 5 { return true }
            let pad = { (n: Int) in (n + align - 1) / align * align }
            o += 12 + pad(namesz) + pad(descsz)
        }
        return false
    }
}
