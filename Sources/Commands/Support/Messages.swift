import UDockerSystem

/// An error that has already been reported, or a plain message for the user; exits with `status`.
/// (`TypedError`; an explicit `status` is its exit status, else its kind's, see `UDocker.exitStatus`.)
public struct CommandFailure: TypedError {
    public let description: String
    public let kind: UDockerError.Kind
    public let cause: (any Error)?
    public let exitStatus: Int32?
    public var status: Int32 { UDocker.exitStatus(for: self) }
    public init(_ message: String, kind: UDockerError.Kind = .unknown, status: Int32? = nil, cause: (any Error)? = nil) {
        description = message; self.kind = kind; exitStatus = status; self.cause = cause
    }
}
