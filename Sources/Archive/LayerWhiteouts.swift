import CLinux
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// The whiteouts of one layer, for caching the layer as an overlayfs lower directory.
///
/// `LayerExtractor` applies whiteouts by deleting from the root it extracts into; to extract a layer
/// on its own (the layer cache), `ExtractOptions.recordWhiteouts` lists them as `Entry`s instead,
/// in the same pass. `scan` is an independent read-only pass over a layer that lists them the same
/// way (diagnostics, and the oracle the extractor's recording is tested against).
public struct LayerWhiteouts: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// Lexically cleaned parent components (relative to the layer root).
        public var parent: [[UInt8]]
        /// The hidden name; nil for an opaque marker (`.wh..wh..opq`) on `parent`.
        public var name: [UInt8]?
    }
    public var entries: [Entry] = []
    /// sha256 of the uncompressed stream (the layer's DiffID).
    public var diffID: Digest

    /// Reads the layer (gzip, zstd or plain tar) and returns its whiteouts and DiffID.
    public static func scan(layerAt path: String) throws -> LayerWhiteouts {
        var entries: [Entry] = []
        let prefix = LayerApplication.whiteoutPrefix
        let opaque = LayerApplication.opaqueName
        let summary = try LayerInspector.read(path: path) { h in
            let (comps, _) = LayerExtractor.clean(h.path)
            guard let name = comps.last, name.starts(with: prefix) else { return }
            let parent = Array(comps.dropLast())
            if name == opaque { entries.append(Entry(parent: parent, name: nil)); return }
            let target = Array(name.dropFirst(prefix.count))
            if target.isEmpty || target == [0x2E] || target == [0x2E, 0x2E] || target.starts(with: prefix) { return }
            entries.append(Entry(parent: parent, name: target))
        }
        return LayerWhiteouts(entries: entries, diffID: summary.diffID)
    }

    /// Sets an extended attribute on an open file (0, or -1 with errno).
    public static func setXattr(_ fd: Int32, _ name: String, _ value: String) -> Int32 {
        cl_fsetxattr(fd, name, value, value.utf8.count)
    }

    /// An extended attribute's value (short values only), nil when absent.
    public static func xattr(fd: Int32, _ name: String) -> String? {
        var buf = [UInt8](repeating: 0, count: 64)
        let n = cl_fgetxattr(fd, name, &buf, buf.count)
        return n > 0 ? String(decoding: buf.prefix(Int(n)), as: UTF8.self) : nil
    }

    /// Same for a path (a symlink itself is not followed).
    public static func xattr(path: String, _ name: String) -> String? {
        var buf = [UInt8](repeating: 0, count: 64)
        let n = cl_lgetxattr(path, name, &buf, buf.count)
        return n > 0 ? String(decoding: buf.prefix(Int(n)), as: UTF8.self) : nil
    }
}
