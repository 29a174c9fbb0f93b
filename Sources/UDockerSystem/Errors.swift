/// The project's error type: a kind (what callers branch on), the one-line message users see,
/// optionally where it happened (`context`, printed as a prefix: "layer sha256:…: …"), and the
/// error it came from (`cause`).
///
/// The message is complete on its own; `cause` keeps the underlying error for programs (its
/// errno, its kind) instead of flattening it into a string that nobody can inspect again. Wrap
/// with `init(_:_:context:cause:)` or `init(wrapping:)`; read with `kind`, `cause`, `rootCause`.
/// See docs/architecture.md ("Errors") for how modules adopt it.
public struct UDockerError: TypedError, Sendable, Equatable {
    /// What went wrong, for programs: generic codes (as `containerization`'s
    /// `ContainerizationError.Code`) and the archive's own. `UDocker.exitStatus(for:)` maps them
    /// to exit statuses in one table.
    public enum Kind: Sendable, Hashable {
        // Generic codes.
        case notFound  // no such image, container, file, name
        case exists  // the name, tag or file is taken
        case inUse  // still used (an image by a container, a container by a run)
        case invalidArgument  // bad command-line or configuration input
        case corrupt  // stored data that does not read back (metadata, blobs)
        case cannotStart  // a container or helper could not be started
        case toolNotFound  // an external tool (proot, runc, …) was not found
        case unknown  // not classified yet (the default of the older error types)
        // The archive's codes.
        case truncated  // a stream (tar, compressed data, download) ends early
        case invalidHeader  // checksum, field syntax, PAX records
        case invalidEntry  // unsafe or impossible content (root type change, bad whiteout, …)
        case corruptCompression  // gzip/zstd data errors
        case unsupported  // a format or feature this tool does not handle
        case io  // a failed system call or host-side preparation
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

    public var description: String {
        if let context { return "\(context): \(message)" }
        return message
    }

    /// Equal kind, message and context (the causes are not compared).
    public static func == (a: UDockerError, b: UDockerError) -> Bool {
        a.kind == b.kind && a.message == b.message && a.context == b.context
    }
}

/// What every error type of the project shares with `UDockerError`: a kind, the one-line
/// message (`description`), the error it came from (`cause`, kept as a value, not only as text)
/// and, rarely, the exit status it asks for. `StoreError`, `EngineError`, `CommandFailure` and
/// `StoreErrorMessage` adopt it; `UDocker.main` catches it once.
public protocol TypedError: Error, CustomStringConvertible {
    var kind: UDockerError.Kind { get }
    var cause: (any Error)? { get }
    /// The exit status this failure asks for when its kind's is not right (udocker's wording
    /// and status for a case); `nil`: the kind decides.
    var exitStatus: Int32? { get }
}

extension TypedError {
    public var exitStatus: Int32? { nil }

    /// The innermost error of the cause chain (this error when it has no cause).
    public var rootCause: any Error {
        var e: any Error = self
        while let next = (e as? any TypedError)?.cause { e = next }
        return e
    }
}
