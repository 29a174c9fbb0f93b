import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// One member of an outer archive (docker-save, OCI layout, `export --clone` tarballs), with its
/// name already checked and normalised (`./a//b` → `a/b`).
public struct ArchiveMember: Sendable {
    public enum Kind: Sendable, Equatable { case file, directory, symlink, hardlink, other }
    public var name: String
    public var kind: Kind
    /// Symlink target (raw, as stored) or hard-link target (normalised member name).
    public var linkName: String
    public var size: Int64
}

/// Streams the members of a tar archive (plain, gzip or zstd: detected from the magic bytes) without
/// writing anything: the caller decides where each member's bytes go. Member names that are
/// absolute or climb out with `..` are refused, so no member can name a place outside the archive.
public final class ArchiveReader {
    private let decoder: Decompressor
    private let buffer: HashedBuffer
    private let tar: TarReader
    public let compression: Compression

    /// `fd` is read, never closed.
    public init(fileDescriptor fd: Int32) throws {
        decoder = try Decompressor(fd: fd)
        compression = decoder.compression
        buffer = HashedBuffer(source: decoder, capacity: 1 << 20)
        tar = TarReader(buffer: buffer)
    }

    /// The next member, or nil at the end of the archive.
    public func next() throws -> ArchiveMember? {
        guard let h = try tar.next() else { return nil }
        guard let name = Self.normalize(h.path) else {
            throw ArchiveError(.invalidEntry, "unsafe member name (absolute or with '..'): '\(printable(h.path))'")
        }
        let kind: ArchiveMember.Kind
        var link = String(decoding: h.linkName, as: UTF8.self)
        switch h.type {
        case .regular: kind = .file
        case .directory: kind = .directory
        case .symlink: kind = .symlink
        case .hardlink:
            kind = .hardlink
            guard let l = Self.normalize(h.linkName) else {
                throw ArchiveError(.invalidEntry, "unsafe hard link target: '\(printable(h.linkName))'")
            }
            link = l
        default: kind = .other
        }
        return ArchiveMember(name: name, kind: kind, linkName: link, size: h.size)
    }

    /// Streams the current member's data to `body`.
    public func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws { try tar.readData(body) }

    /// The current member's data in memory, refused above `limit` bytes.
    public func readAll(size: Int64, limit: Int) throws -> [UInt8] {
        guard size <= Int64(limit) else { throw ArchiveError(.unsupported, "archive member too large to be metadata (\(size) bytes)") }
        var out: [UInt8] = []
        out.reserveCapacity(Int(size))
        try tar.readData { out.append(contentsOf: $0) }
        return out
    }

    /// Reads and hashes the rest of the stream (trailing blocks), so a truncated compressed stream
    /// is noticed even after the end-of-archive blocks.
    public func finish() throws { try buffer.drain() }

    /// `./a//b/` → `a/b`; nil for absolute names, `..` components, NUL or an empty result that is
    /// not the archive root (the root itself is returned as "").
    public static func normalize(_ raw: [UInt8]) -> String? {
        guard !raw.contains(0), raw.first != 0x2F else { return nil }
        var parts: [[UInt8]] = []
        for c in raw.split(separator: 0x2F, omittingEmptySubsequences: true) {
            if c.elementsEqual([0x2E]) { continue }
            if c.elementsEqual([0x2E, 0x2E]) { return nil }
            parts.append(Array(c))
        }
        let joined = parts.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
        // Names that are not valid UTF-8 could alias after decoding: refuse them.
        guard Array(joined.utf8) == Array(parts.joined(separator: [0x2F])) else { return nil }
        return joined
    }

    /// Resolves a symlink member's target relative to the member's directory, inside the archive
    /// namespace; nil when it leaves the archive.
    public static func resolveLink(member: String, target: String) -> String? {
        if target.hasPrefix("/") { return nil }
        var parts = member.split(separator: "/").map(String.init)
        if !parts.isEmpty { parts.removeLast() }
        for c in target.split(separator: "/") {
            if c == "." { continue }
            if c == ".." { if parts.isEmpty { return nil }; parts.removeLast(); continue }
            parts.append(String(c))
        }
        return parts.joined(separator: "/")
    }
}

/// What a layer (or rootfs) tarball holds, found by reading all of it.
public struct LayerSummary: Sendable {
    /// sha256 of the uncompressed tar stream.
    public var diffID: Digest
    public var compression: Compression
    public var uncompressedSize: Int64
    public var entries: Int
}

public enum LayerInspector {
    /// Reads a whole layer: decompression and every tar header are checked, nothing is written.
    /// With `rejectEscapingNames`, entries whose names climb above the root (`../x`, `a/../../x`)
    /// are an error rather than being clamped at extraction time. With `requireEndOfArchive`, a tar
    /// without its end-of-archive blocks (cut at an entry boundary) is an error; GNU tar and the
    /// Python udocker accept it, silently importing part of a file.
    public static func inspect(
        path: String, rejectEscapingNames: Bool = false,
        requireEndOfArchive: Bool = false
    ) throws -> LayerSummary {
        try read(path: path, requireEndMarker: requireEndOfArchive) { h in
            if rejectEscapingNames && LayerExtractor.clean(h.path).clamped {
                throw ArchiveError(.invalidEntry, "entry name climbs out of the root: '\(printable(h.path))'")
            }
        }
    }

    /// Reads a whole layer file (gzip, zstd or plain tar), handing each header to `visit` (entry
    /// data and trailing bytes are read and hashed, not kept).
    static func read(path: String, requireEndMarker: Bool = false, visit: (TarHeader) throws -> Void) throws -> LayerSummary {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.io("open", path) }
        defer { close(fd) }
        let decoder = try Decompressor(fd: fd)
        let buffer = HashedBuffer(source: decoder, capacity: 1 << 20)
        let tar = TarReader(buffer: buffer)
        tar.requireEndMarker = requireEndMarker
        var n = 0
        while let h = try tar.next() {
            n += 1
            try visit(h)
        }
        try buffer.drain()
        return LayerSummary(diffID: buffer.digest(), compression: decoder.compression, uncompressedSize: buffer.total, entries: n)
    }
}
