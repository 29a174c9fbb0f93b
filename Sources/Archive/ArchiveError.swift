/// A one-line extraction error, e.g. `layer sha256:…: truncated tar archive`.
public struct ArchiveError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case truncated          // the tar or compressed stream ends early
        case invalidHeader      // checksum, field syntax, PAX records
        case invalidEntry       // unsafe or impossible entry (root type change, bad whiteout, …)
        case corruptCompression // gzip/zstd data errors
        case unsupported        // sparse files, xz/bzip2, multi-volume
        case io                 // a failed system call while extracting
        case diffIDMismatch     // the uncompressed stream does not hash to the expected DiffID
    }
    public let kind: Kind
    public let message: String
    /// The layer (file name, e.g. `sha256:…`) the error happened in, when known.
    public let layer: String?

    public init(_ kind: Kind, _ message: String, layer: String? = nil) {
        self.kind = kind; self.message = message; self.layer = layer
    }

    func inLayer(_ name: String) -> ArchiveError {
        layer == nil ? ArchiveError(kind, message, layer: name) : self
    }

    public var description: String {
        if let layer { return "layer \(layer): \(message)" }
        return message
    }
}

/// Printable form of raw name bytes (for messages only; never used to build paths).
func printable(_ bytes: [UInt8]) -> String {
    String(decoding: bytes.prefix(4096), as: UTF8.self)
}
