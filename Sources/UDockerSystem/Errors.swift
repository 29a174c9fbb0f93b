/// The project's error type: a kind (what callers branch on), the one-line message users see,
/// optionally where it happened (`context`, printed as a prefix: "layer sha256:…: …"), and the
/// error it came from (`cause`).
///
/// The message is complete on its own; `cause` keeps the underlying error for programs (its
/// errno, its kind) instead of flattening it into a string that nobody can inspect again. Wrap
/// with `init(_:_:context:cause:)` or `init(wrapping:)`; read with `kind`, `cause`, `rootCause`.
/// See docs/architecture.md ("Errors") for how modules adopt it.
public struct UDockerError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case truncated  // a stream (tar, compressed data, download) ends early
        case invalidHeader  // checksum, field syntax, PAX records
        case invalidEntry  // unsafe or impossible content (root type change, bad whiteout, …)
        case corruptCompression  // gzip/zstd data errors
        case unsupported  // a format or feature this tool does not handle
        case io  // a failed system call
        case diffIDMismatch  // the uncompressed stream does not hash to the expected DiffID
        case invalidInput  // bad input from the command line or a metadata file
    }
    public let kind: Kind
    public let message: String
    /// Where it happened (a layer name, a container id), printed before the message.
    public let context: String?
    public let cause: (any Error)?

    public init(_ kind: Kind, _ message: String, context: String? = nil, cause: (any Error)? = nil) {
        self.kind = kind; self.message = message; self.context = context; self.cause = cause
    }

    /// A failed system call: kind `.io`, the same message as the `SystemError`, which is kept as the cause.
    public init(_ error: SystemError, context: String? = nil) {
        self.init(.io, error.description, context: context, cause: error)
    }

    /// Any error as a `UDockerError`: itself (given `context` when it had none), a `SystemError`
    /// as `.io`, anything else as `.io` with its description as the message.
    public init(wrapping error: any Error, context: String? = nil) {
        switch error {
        case let e as UDockerError: self = e.context == nil ? e.within(context) : e
        case let e as SystemError: self.init(e, context: context)
        default: self.init(.io, "\(error)", context: context, cause: error)
        }
    }

    /// The same error with `context` (when it has none yet).
    public func within(_ context: String?) -> UDockerError {
        self.context == nil ? UDockerError(kind, message, context: context, cause: cause) : self
    }

    /// The innermost error of the cause chain (this error when it has no cause).
    public var rootCause: any Error {
        var e: any Error = self
        while let next = (e as? UDockerError)?.cause { e = next }
        return e
    }

    public var description: String {
        if let context { return "\(context): \(message)" }
        return message
    }

    /// Equal kind, message and context (the causes are not compared).
    public static func == (a: UDockerError, b: UDockerError) -> Bool {
        a.kind == b.kind && a.message == b.message && a.context == b.context
    }
}
