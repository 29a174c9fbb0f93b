import ContainerModel
import UDockerSystem
/// A one-line error from the engines (`TypedError`). Kinds: `.unsupported` (a mode this build
/// does not implement), `.invalidArgument` (bad `run` options or image metadata), `.io`
/// (host-side preparation: temp files, mountpoints), `.cannotStart` (namespace setup, exec),
/// `.toolNotFound` (proot, runc, … missing). `UDocker.exitStatus(for:)` maps them to what
/// `udocker run` exits with (udocker: 2 when the run could not be initialised, 1 when the
/// engine tool is missing); `exitStatus` overrides that where udocker words a case itself.
public struct EngineError: TypedError, Sendable, Equatable {
    public typealias Kind = UDockerError.Kind

    public var kind: Kind
    public var message: String
    public var exitStatus: Int32?
    public var cause: (any Error)?

    public init(_ kind: Kind, _ message: String, exitStatus: Int32? = nil, cause: (any Error)? = nil) {
        self.kind = kind
        self.message = message
        self.exitStatus = exitStatus
        self.cause = cause
    }

    /// Equal kind, message and status (the causes are not compared).
    public static func == (a: EngineError, b: EngineError) -> Bool {
        a.kind == b.kind && a.message == b.message && a.exitStatus == b.exitStatus
    }

    public var description: String { message }

    public static func unsupportedMode(_ mode: ExecutionMode) -> EngineError {
        EngineError(
            .unsupported,
            "execution mode \(mode.rawValue) (\(mode.summary)) is not implemented yet; "
                + "use one of \(ExecutionMode.implemented.map(\.rawValue).joined(separator: " ")) (udocker setup --execmode=N1 <container>)"
        )
    }

    static func invalid(_ message: String) -> EngineError { EngineError(.invalidArgument, message) }
}
