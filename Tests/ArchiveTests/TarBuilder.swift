import Foundation

/// A tiny tar writer for tests: ustar headers, PAX records or GNU `L`/`K` records for long names,
/// arbitrary name bytes, and knobs to produce broken archives.
struct TarBuilder {
    private(set) var bytes: [UInt8] = []

    enum LongNames { case pax, gnu }
    var longNames: LongNames = .pax

    static let regular: UInt8 = 0x30, hardlink: UInt8 = 0x31, symlink: UInt8 = 0x32,
        char: UInt8 = 0x33, block: UInt8 = 0x34, directory: UInt8 = 0x35, fifo: UInt8 = 0x36

    mutating func file(_ name: String, _ content: String = "", mode: UInt32 = 0o644, mtime: Int64 = 1_600_000_000) {
        entry(name: Array(name.utf8), type: TarBuilder.regular, content: Array(content.utf8), mode: mode, mtime: mtime)
    }
    mutating func file(_ name: String, bytes content: [UInt8], mode: UInt32 = 0o644) {
        entry(name: Array(name.utf8), type: TarBuilder.regular, content: content, mode: mode)
    }
    mutating func dir(_ name: String, mode: UInt32 = 0o755, mtime: Int64 = 1_600_000_000) {
        entry(name: Array(name.utf8), type: TarBuilder.directory, mode: mode, mtime: mtime)
    }
    mutating func symlink(_ name: String, to target: String) {
        entry(name: Array(name.utf8), type: TarBuilder.symlink, link: Array(target.utf8), mode: 0o777)
    }
    mutating func hardlink(_ name: String, to target: String) {
        entry(name: Array(name.utf8), type: TarBuilder.hardlink, link: Array(target.utf8))
    }
    mutating func fifo(_ name: String, mode: UInt32 = 0o644) {
        entry(name: Array(name.utf8), type: TarBuilder.fifo, mode: mode)
    }
    mutating func charDevice(_ name: String, major: Int64 = 1, minor: Int64 = 3) {
        entry(name: Array(name.utf8), type: TarBuilder.char, mode: 0o666, devMajor: major, devMinor: minor)
    }

    /// One entry; names or link names over 100 bytes go through PAX or GNU records.
    mutating func entry(
        name: [UInt8], type: UInt8, link: [UInt8] = [], content: [UInt8] = [],
        mode: UInt32 = 0o644, mtime: Int64 = 1_600_000_000,
        devMajor: Int64 = 0, devMinor: Int64 = 0, extraPAX: [(String, [UInt8])] = [],
        base256Size: Bool = false, base256DevMajor: Int64? = nil
    ) {
        var pax = extraPAX
        var headerName = name
        var headerLink = link
        if name.count > 100 {
            switch longNames {
            case .pax: pax.append(("path", name))
            case .gnu: appendRaw(name: Array("././@LongLink".utf8), type: 0x4C, content: name + [0])
            }
            headerName = Array(name.prefix(100))
        }
        if link.count > 100 {
            switch longNames {
            case .pax: pax.append(("linkpath", link))
            case .gnu: appendRaw(name: Array("././@LongLink".utf8), type: 0x4B, content: link + [0])
            }
            headerLink = Array(link.prefix(100))
        }
        if !pax.isEmpty {
            appendRaw(name: Array("PaxHeaders/x".utf8), type: 0x78, content: TarBuilder.paxRecords(pax))
        }
        appendRaw(
            name: headerName, type: type, link: headerLink, content: content, mode: mode, mtime: mtime,
            devMajor: devMajor, devMinor: devMinor, base256Size: base256Size, base256DevMajor: base256DevMajor)
    }

    static func paxRecords(_ records: [(String, [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for (k, v) in records {
            let body = Array(" \(k)=".utf8) + v + [0x0A]
            var len = body.count + 1
            while String(len).utf8.count + body.count != len { len += 1 }
            out += Array(String(len).utf8) + body
        }
        return out
    }

    /// Appends a header (+ data + padding) exactly as given.
    mutating func appendRaw(
        name: [UInt8], type: UInt8, link: [UInt8] = [], content: [UInt8] = [],
        mode: UInt32 = 0o644, mtime: Int64 = 1_600_000_000, devMajor: Int64 = 0, devMinor: Int64 = 0,
        base256Size: Bool = false, base256DevMajor: Int64? = nil, corruptChecksum: Bool = false
    ) {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ off: Int, _ b: [UInt8]) { for (i, x) in b.enumerated() { h[off + i] = x } }
        func octal(_ off: Int, _ len: Int, _ v: Int64) {
            let s = String(v, radix: 8)
            let padded = String(repeating: "0", count: max(0, len - 1 - s.count)) + s
            put(off, Array(padded.utf8) + [0])
        }
        func base256(_ off: Int, _ len: Int, _ v: Int64) {
            var x = v
            for i in stride(from: len - 1, through: 0, by: -1) { h[off + i] = UInt8(truncatingIfNeeded: x); x >>= 8 }
            h[off] = v < 0 ? 0xFF : 0x80
        }
        put(0, Array(name.prefix(100)))
        octal(100, 8, Int64(mode))
        octal(108, 8, 0)
        octal(116, 8, 0)
        if base256Size { base256(124, 12, Int64(content.count)) } else { octal(124, 12, Int64(content.count)) }
        octal(136, 12, mtime)
        h[156] = type
        put(157, Array(link.prefix(100)))
        put(257, Array("ustar".utf8) + [0])
        put(263, Array("00".utf8))
        if let m = base256DevMajor { base256(329, 8, m) } else { octal(329, 8, devMajor) }
        octal(337, 8, devMinor)
        for i in 148..<156 { h[i] = 0x20 }
        var sum = h.reduce(0) { $0 + Int($1) }
        if corruptChecksum { sum += 1 }
        let cs = String(sum, radix: 8)
        put(148, Array((String(repeating: "0", count: max(0, 6 - cs.count)) + cs).utf8) + [0, 0x20])
        bytes += h
        bytes += content
        let pad = (512 - content.count % 512) % 512
        bytes += [UInt8](repeating: 0, count: pad)
    }

    /// The archive with its two zero end blocks.
    var archive: [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }
}
