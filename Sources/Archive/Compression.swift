import CLinux
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Layer compression, detected from magic bytes (never from the media type alone).
public enum Compression: Sendable, Equatable, CustomStringConvertible {
    case none, gzip, zstd

    /// Detects the compression of a stream from its first bytes (at least 10 for certainty).
    /// xz and bzip2 are recognised only to be refused with a clear message.
    public static func detect(_ magic: some Collection<UInt8>) throws -> Compression {
        let m = Array(magic.prefix(10))
        if m.count >= 2 && m[0] == 0x1F && m[1] == 0x8B { return .gzip }
        if m.count >= 4 && m[0] == 0x28 && m[1] == 0xB5 && m[2] == 0x2F && m[3] == 0xFD { return .zstd }
        if m.count >= 6 && m[0..<6].elementsEqual([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) {
            throw ArchiveError(.unsupported, "xz-compressed layers are not supported")
        }
        if m.count >= 10 && m[0..<3].elementsEqual([0x42, 0x5A, 0x68]) && (0x31...0x39).contains(m[3])
            && m[4..<10].elementsEqual([0x31, 0x41, 0x59, 0x26, 0x53, 0x59])
        {
            throw ArchiveError(.unsupported, "bzip2-compressed layers are not supported")
        }
        return .none
    }

    public var description: String {
        switch self {
        case .none: return "none";
        case .gzip: return "gzip";
        case .zstd: return "zstd"
        }
    }
}

/// Reads a file descriptor and yields decompressed bytes (gzip with all members, zstd with all
/// frames, or plain), detecting the format from the first bytes.
final class Decompressor {
    private let fd: Int32
    private let input: UnsafeMutableRawPointer
    private let inputCapacity: Int
    private var inStart = 0
    private var inEnd = 0
    private var inEOF = false
    private(set) var compression: Compression = .none
    private var gz: OpaquePointer?
    private var zs: OpaquePointer?
    /// Inside a gzip member / zstd frame.
    private var unitOpen = false
    private var units = 0
    private var finished = false
    /// Compressed bytes read so far.
    private(set) var compressedBytes: Int64 = 0

    init(fd: Int32, inputCapacity: Int = 256 * 1024) throws {
        self.fd = fd
        self.inputCapacity = max(inputCapacity, 4096)
        input = UnsafeMutableRawPointer.allocate(byteCount: self.inputCapacity, alignment: 16)
        do {
            while inEnd < 10 && !inEOF { try fillInput() }
            compression = try Compression.detect(UnsafeRawBufferPointer(start: input, count: inEnd))
            switch compression {
            case .none: break
            case .gzip:
                guard let z = cl_gz_new() else { throw ArchiveError(.io, "cannot initialise zlib") }
                gz = z
            case .zstd:
                if let err = cl_zstd_load_error() { throw ArchiveError(.unsupported, String(cString: err)) }
                guard let z = cl_zstd_new() else { throw ArchiveError(.io, "cannot initialise zstd decoder") }
                zs = z
            }
        } catch {
            input.deallocate()
            throw error
        }
    }

    deinit {
        if let gz { cl_gz_free(gz) }
        if let zs { cl_zstd_free(zs) }
        input.deallocate()
    }

    private func fillInput() throws {
        if inStart > 0 {
            if inStart < inEnd { input.copyMemory(from: input + inStart, byteCount: inEnd - inStart) }
            inEnd -= inStart
            inStart = 0
        }
        guard inEnd < inputCapacity else { return }
        while true {
            let n = Glibc.read(fd, input + inEnd, inputCapacity - inEnd)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.io("read")
            }
            if n == 0 { inEOF = true } else { inEnd += n; compressedBytes += Int64(n) }
            return
        }
    }

    /// Fills `out` with up to `count` decompressed bytes; 0 means the end of the stream.
    func read(into out: UnsafeMutableRawPointer, count: Int) throws -> Int {
        if finished || count == 0 { return 0 }
        switch compression {
        case .none:
            if inStart < inEnd {
                let n = min(count, inEnd - inStart)
                out.copyMemory(from: input + inStart, byteCount: n)
                inStart += n
                return n
            }
            if inEOF { finished = true; return 0 }
            while true {
                let n = Glibc.read(fd, out, count)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ArchiveError.io("read")
                }
                if n == 0 { inEOF = true; finished = true }
                compressedBytes += Int64(n)
                return n
            }
        case .gzip, .zstd:
            return try decode(into: out, count: count)
        }
    }

    private func decode(into out: UnsafeMutableRawPointer, count: Int) throws -> Int {
        let isGzip = compression == .gzip
        let name = isGzip ? "gzip" : "zstd"
        var stalls = 0
        while true {
            if !unitOpen {
                // Between members/frames: the end, another member, or (gzip) zero padding.
                if inStart == inEnd {
                    if inEOF { finished = true; return 0 }
                    try fillInput()
                    continue
                }
                if isGzip {
                    if inEnd - inStart < 2 && !inEOF { try fillInput(); continue }
                    let b0 = input.load(fromByteOffset: inStart, as: UInt8.self)
                    let b1 = inEnd - inStart >= 2 ? input.load(fromByteOffset: inStart + 1, as: UInt8.self) : 0
                    if b0 == 0x1F && b1 == 0x8B {
                        if units > 0 && cl_gz_reset(gz) != CL_GZ_OK { throw ArchiveError(.io, "cannot reset zlib") }
                    } else {
                        // Trailing zero bytes (tape-style padding) are ignored, like gzip(1) does.
                        var allZero = true
                        for i in inStart..<inEnd where input.load(fromByteOffset: i, as: UInt8.self) != 0 { allZero = false; break }
                        if allZero { inStart = inEnd; continue }
                        throw ArchiveError(.corruptCompression, "trailing garbage after gzip stream")
                    }
                }
                unitOpen = true
                units += 1
            }
            if inStart == inEnd && !inEOF { try fillInput() }
            var used = 0
            var made = 0
            let r: Int32
            let inPtr = (input + inStart).assumingMemoryBound(to: UInt8.self)
            let outPtr = out.assumingMemoryBound(to: UInt8.self)
            if isGzip {
                r = cl_gz_step(gz, inPtr, inEnd - inStart, &used, outPtr, count, &made)
                if r == CL_GZ_ERROR { throw ArchiveError(.corruptCompression, "gzip: \(String(cString: cl_gz_error(gz)))") }
            } else {
                r = cl_zstd_step(zs, inPtr, inEnd - inStart, &used, outPtr, count, &made)
                if r == CL_ZSTD_ERROR { throw ArchiveError(.corruptCompression, String(cString: cl_zstd_error(zs))) }
            }
            inStart += used
            if r == 1 { unitOpen = false }  // CL_GZ_MEMBER_END / CL_ZSTD_FRAME_END
            if made > 0 { return made }
            if r == 1 { continue }
            if used == 0 {
                if inStart == inEnd && inEOF {
                    throw ArchiveError(.truncated, "truncated \(name) stream")
                }
                stalls += 1
                if stalls > 2 && inEnd - inStart >= inputCapacity {
                    throw ArchiveError(.corruptCompression, "\(name) decoder made no progress")
                }
                try fillInput()
            }
        }
    }
}
