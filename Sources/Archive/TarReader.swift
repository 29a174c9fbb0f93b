import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The kind of a tar entry.
enum TarEntryType: Equatable {
    case regular, hardlink, symlink, characterDevice, blockDevice, directory, fifo
    case other(UInt8)
}

/// One tar entry's header, with PAX and GNU long-name records already applied. Names are raw bytes.
struct TarHeader {
    var type: TarEntryType
    var path: [UInt8]
    var linkName: [UInt8]
    var mode: UInt32
    var size: Int64
    var mtime: Int64
    var mtimeNanoseconds: Int64
    var devMajor: Int64
    var devMinor: Int64
}

/// A buffer of decompressed bytes that hashes everything that passes through it (the DiffID).
final class HashedBuffer {
    private let source: Decompressor
    /// When set, the bytes come from the pipeline's producer thread (which hashes them if it `hashes`).
    private let pipeline: DecodePipeline?
    let storage: UnsafeMutableRawPointer
    let capacity: Int
    private(set) var start = 0
    private(set) var end = 0
    private(set) var eof = false
    private var hasher = DigestHasher()
    private(set) var total: Int64 = 0

    init(source: Decompressor, capacity: Int, pipeline: DecodePipeline? = nil) {
        self.source = source
        self.pipeline = pipeline
        self.capacity = max(capacity, 64 * 1024)
        storage = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 64)
    }
    deinit { storage.deallocate() }

    var available: Int { end - start }
    var bytes: UnsafeRawPointer { UnsafeRawPointer(storage + start) }

    /// Reads more; returns false at the end of the stream.
    @discardableResult
    func fill() throws -> Bool {
        if eof { return false }
        if start > 0 && start == end { start = 0; end = 0 }
        if end == capacity {
            if start == 0 { return true }
            storage.copyMemory(from: storage + start, byteCount: end - start)
            end -= start
            start = 0
        }
        let n: Int
        if let pipeline {
            n = try pipeline.read(into: storage + end, count: capacity - end)
            if n > 0 && !pipeline.hashes { hasher.update(UnsafeRawBufferPointer(start: storage + end, count: n)) }
        } else {
            n = try source.read(into: storage + end, count: capacity - end)
            if n > 0 { hasher.update(UnsafeRawBufferPointer(start: storage + end, count: n)) }
        }
        if n == 0 { eof = true; return false }
        end += n
        total += Int64(n)
        return true
    }

    /// Ensures `n` contiguous bytes (n ≤ capacity). Returns false if the stream ends first.
    func ensure(_ n: Int) throws -> Bool {
        while end - start < n {
            if capacity - start < n && start > 0 {
                storage.copyMemory(from: storage + start, byteCount: end - start)
                end -= start
                start = 0
            }
            if try !fill() { return false }
        }
        return true
    }

    func consume(_ n: Int) { start += n }

    /// Reads and hashes everything left.
    func drain() throws {
        start = end
        while try fill() { start = end }
    }

    func digest() -> Digest {
        if let pipeline, pipeline.hashes { return pipeline.digest() }
        pipeline?.finish()
        return hasher.finalize()
    }
}

/// A streaming tar reader: ustar, GNU (long names `L`/`K`, base-256 numbers), PAX (`x`; global
/// `g` headers are read and ignored). Sparse entries are refused.
final class TarReader {
    let buffer: HashedBuffer
    /// Data bytes of the current entry not yet consumed, and the padding after them.
    private var remaining: Int64 = 0
    private var padding = 0
    private var ended = false
    /// Refuse an archive that ends without the end-of-archive zero block(s): a tar cut at an
    /// entry boundary. Off for registry layers (their size and digest are checked, and some
    /// writers omit the blocks); on for user tarballs (`import`), which nothing else checks.
    var requireEndMarker = false
    static let maxMetaSize = 1 << 20

    init(buffer: HashedBuffer) { self.buffer = buffer }

    /// The next entry, or nil at the end of the archive.
    func next() throws -> TarHeader? {
        try skipData()
        if ended { return nil }
        var paxPath: [UInt8]?
        var paxLink: [UInt8]?
        var paxSize: Int64?
        var paxMtime: (Int64, Int64)?
        var longName: [UInt8]?
        var longLink: [UInt8]?
        while true {
            guard try buffer.ensure(512) else {
                if buffer.available == 0 && paxPath == nil && paxLink == nil && longName == nil && longLink == nil && paxSize == nil {
                    if requireEndMarker {
                        throw ArchiveError(
                            .truncated, "truncated tar archive: it ends without the end-of-archive blocks (cut between two entries?)")
                    }
                    ended = true  // end of stream on a block boundary: accepted as the end
                    return nil
                }
                throw ArchiveError(.truncated, "truncated tar archive")
            }
            let block = UnsafeRawBufferPointer(start: buffer.bytes, count: 512)
            if isZero(block) {
                buffer.consume(512)
                // A second zero block ends the archive; end of stream after one is accepted too.
                guard try buffer.ensure(512) else {
                    if buffer.available == 0 { ended = true; return nil }
                    throw ArchiveError(.truncated, "truncated tar archive")
                }
                let second = UnsafeRawBufferPointer(start: buffer.bytes, count: 512)
                if isZero(second) {
                    buffer.consume(512)
                    ended = true
                    return nil
                }
                throw ArchiveError(.invalidHeader, "invalid tar header: data after a single zero block")
            }
            try verifyChecksum(block)
            let typeflag = block[156]
            let size = try parseNumber(block, 124, 12, "size")
            guard size >= 0 else { throw ArchiveError(.invalidHeader, "invalid tar header: negative size") }
            let magicUstar = block[257..<263].elementsEqual([0x75, 0x73, 0x74, 0x61, 0x72, 0x00])  // "ustar\0"
            var name = cString(block, 0, 100)
            if magicUstar {
                let prefix = cString(block, 345, 155)
                if !prefix.isEmpty { name = prefix + [0x2F] + name }
            }
            let linkName = cString(block, 157, 100)
            let mode = try parseNumber(block, 100, 8, "mode")
            let mtime = try parseNumber(block, 136, 12, "mtime")
            let devMajor = typeflag == 0x33 || typeflag == 0x34 ? try parseNumber(block, 329, 8, "devmajor") : 0
            let devMinor = typeflag == 0x33 || typeflag == 0x34 ? try parseNumber(block, 337, 8, "devminor") : 0
            buffer.consume(512)

            switch typeflag {
            case 0x78, 0x58:  // 'x' PAX extended header (and Solaris 'X')
                let data = try readMeta(size, what: "PAX header")
                for (k, v) in try parsePAX(data) {
                    switch k {
                    case "path":
                        if v.contains(0) { throw ArchiveError(.invalidHeader, "invalid PAX header: NUL in path") }
                        paxPath = v
                    case "linkpath":
                        if v.contains(0) { throw ArchiveError(.invalidHeader, "invalid PAX header: NUL in linkpath") }
                        paxLink = v
                    case "size":
                        guard let s = Int64(String(decoding: v, as: UTF8.self)), s >= 0 else {
                            throw ArchiveError(.invalidHeader, "invalid PAX header: bad size")
                        }
                        paxSize = s
                    case "mtime":
                        paxMtime = parsePAXTime(v)
                    default:
                        if k.hasPrefix("GNU.sparse.") {
                            throw ArchiveError(.unsupported, "sparse file entries are not supported")
                        }
                    }
                }
                continue
            case 0x67:  // 'g' global header: ignored
                _ = try readMeta(size, what: "PAX global header")
                continue
            case 0x4C:  // 'L' GNU long name
                longName = trimNUL(try readMeta(size, what: "GNU long name"))
                continue
            case 0x4B:  // 'K' GNU long link
                longLink = trimNUL(try readMeta(size, what: "GNU long link name"))
                continue
            case 0x53:  // 'S' GNU sparse
                throw ArchiveError(.unsupported, "sparse file entries are not supported ('\(printable(longName ?? name))')")
            case 0x4D, 0x4E:  // 'M' multi-volume, 'N' old GNU long names
                throw ArchiveError(.unsupported, "unsupported tar entry type '\(Character(UnicodeScalar(typeflag)))'")
            default:
                break
            }

            let path = paxPath ?? longName ?? name
            let type: TarEntryType
            switch typeflag {
            case 0x30, 0x00, 0x37: type = path.last == 0x2F && typeflag == 0x00 ? .directory : .regular
            case 0x31: type = .hardlink
            case 0x32: type = .symlink
            case 0x33: type = .characterDevice
            case 0x34: type = .blockDevice
            case 0x35: type = .directory
            case 0x36: type = .fifo
            default: type = .other(typeflag)
            }
            var dataSize = paxSize ?? size
            switch type {
            case .hardlink, .symlink, .characterDevice, .blockDevice, .directory, .fifo: dataSize = 0
            default: break
            }
            remaining = dataSize
            padding = Int((512 - dataSize % 512) % 512)
            let (mt, mtn) = paxMtime ?? (mtime, 0)
            return TarHeader(
                type: type, path: path, linkName: paxLink ?? longLink ?? linkName,
                mode: UInt32(truncatingIfNeeded: mode & 0o7777), size: dataSize,
                mtime: mt, mtimeNanoseconds: mtn, devMajor: devMajor, devMinor: devMinor)
        }
    }

    /// Passes the current entry's data to `body` in chunks (straight from the buffer).
    func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        while remaining > 0 {
            if buffer.available == 0 {
                guard try buffer.fill() else { throw ArchiveError(.truncated, "truncated tar archive") }
            }
            let n = Int(min(Int64(buffer.available), remaining))
            try body(UnsafeRawBufferPointer(start: buffer.bytes, count: n))
            buffer.consume(n)
            remaining -= Int64(n)
        }
        try skipPadding()
    }

    func skipData() throws {
        while remaining > 0 {
            if buffer.available == 0 {
                guard try buffer.fill() else { throw ArchiveError(.truncated, "truncated tar archive") }
            }
            let n = Int(min(Int64(buffer.available), remaining))
            buffer.consume(n)
            remaining -= Int64(n)
        }
        try skipPadding()
    }

    private func skipPadding() throws {
        if padding > 0 {
            guard try buffer.ensure(padding) else { throw ArchiveError(.truncated, "truncated tar archive") }
            buffer.consume(padding)
            padding = 0
        }
    }

    private func readMeta(_ size: Int64, what: String) throws -> [UInt8] {
        guard size <= Int64(TarReader.maxMetaSize) else {
            throw ArchiveError(.invalidHeader, "invalid tar header: \(what) of \(size) bytes is too large")
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(size))
        remaining = size
        padding = Int((512 - size % 512) % 512)
        try readData { out.append(contentsOf: $0) }
        return out
    }

    // MARK: - field parsing

    private func isZero(_ b: UnsafeRawBufferPointer) -> Bool {
        var acc: UInt64 = 0
        for i in stride(from: 0, to: 512, by: 8) { acc |= b.loadUnaligned(fromByteOffset: i, as: UInt64.self) }
        return acc == 0
    }

    private func verifyChecksum(_ b: UnsafeRawBufferPointer) throws {
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for i in 0..<512 {
            let v: UInt8 = (148..<156).contains(i) ? 0x20 : b[i]
            unsigned += Int64(v)
            signed += Int64(Int8(bitPattern: v))
        }
        guard let stored = try? parseNumber(b, 148, 8, "checksum"), stored == unsigned || stored == signed else {
            throw ArchiveError(.invalidHeader, "invalid tar header (checksum mismatch): not a tar archive or corrupt")
        }
    }

    /// Octal (NUL/space padded) or GNU base-256 numbers.
    private func parseNumber(_ b: UnsafeRawBufferPointer, _ off: Int, _ len: Int, _ field: String) throws -> Int64 {
        let first = b[off]
        if first & 0x80 != 0 {
            // base-256: big-endian two's complement, first byte's top bit is the marker.
            let negative = first & 0x40 != 0
            var v: Int64 = negative ? -1 : 0
            for i in 0..<len {
                var byte = b[off + i]
                if i == 0 { byte &= 0x7F; if negative { byte |= 0x80 } }
                if !negative && v > (Int64.max >> 8) { throw ArchiveError(.invalidHeader, "invalid tar header: \(field) overflows") }
                if negative && v < (Int64.min >> 8) { throw ArchiveError(.invalidHeader, "invalid tar header: \(field) overflows") }
                v = (v << 8) | Int64(byte)
            }
            return v
        }
        var i = off
        let end = off + len
        while i < end && (b[i] == 0x20 || b[i] == 0) { i += 1 }
        var v: Int64 = 0
        var digits = 0
        while i < end, b[i] >= 0x30 && b[i] <= 0x37 {
            if v > (Int64.max >> 3) { throw ArchiveError(.invalidHeader, "invalid tar header: \(field) overflows") }
            v = v * 8 + Int64(b[i] - 0x30)
            i += 1
            digits += 1
        }
        while i < end {
            if b[i] != 0x20 && b[i] != 0 { throw ArchiveError(.invalidHeader, "invalid tar header: bad \(field) field") }
            i += 1
        }
        return v
    }

    private func cString(_ b: UnsafeRawBufferPointer, _ off: Int, _ len: Int) -> [UInt8] {
        var n = 0
        while n < len && b[off + n] != 0 { n += 1 }
        return Array(UnsafeRawBufferPointer(rebasing: b[off..<(off + n)]))
    }

    private func trimNUL(_ v: [UInt8]) -> [UInt8] {
        if let z = v.firstIndex(of: 0) { return Array(v[..<z]) }
        return v
    }

    /// PAX records: "<len> <key>=<value>\n".
    private func parsePAX(_ data: [UInt8]) throws -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        var i = 0
        while i < data.count {
            if data[i] == 0 { break }  // some writers pad with NULs
            var len = 0
            var j = i
            while j < data.count, data[j] >= 0x30 && data[j] <= 0x39 {
                len = len * 10 + Int(data[j] - 0x30)
                if len > data.count { throw ArchiveError(.invalidHeader, "invalid PAX header: bad record length") }
                j += 1
            }
            guard j < data.count, data[j] == 0x20, j > i, len > j - i + 1, i + len <= data.count, data[i + len - 1] == 0x0A else {
                throw ArchiveError(.invalidHeader, "invalid PAX header: malformed record")
            }
            let rec = data[(j + 1)..<(i + len - 1)]
            guard let eq = rec.firstIndex(of: 0x3D) else { throw ArchiveError(.invalidHeader, "invalid PAX header: record without '='") }
            let key = String(decoding: rec[rec.startIndex..<eq], as: UTF8.self)
            out.append((key, Array(rec[(eq + 1)...])))
            i += len
        }
        return out
    }

    private func parsePAXTime(_ v: [UInt8]) -> (Int64, Int64)? {
        let s = String(decoding: v, as: UTF8.self)
        let parts = s.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let secs = Int64(parts[0]) else { return nil }
        var nanos: Int64 = 0
        if parts.count == 2 {
            let frac = parts[1].prefix(9)
            guard frac.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            var digits = String(frac)
            while digits.count < 9 { digits += "0" }
            nanos = Int64(digits) ?? 0
            // A negative time with a fraction borrows a second (hostile: -9223372036854775808.5).
            if parts[0].hasPrefix("-"), nanos > 0 {
                let (borrowed, overflow) = secs.subtractingReportingOverflow(1)
                return overflow ? nil : (borrowed, 1_000_000_000 - nanos)
            }
        }
        return (secs, nanos)
    }
}
