import ContainerModel
/// A one-line error from the engines. `exitStatus` is what `udocker run` should exit with
/// (udocker: 2 when the run could not be initialised, 1 when the engine tool is missing).
public struct EngineError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The mode exists in udocker but this build does not implement it.
        case unsupportedMode
        /// Bad `run` options or image metadata (volumes, user, env, workdir, command).
        case invalidOptions
        /// Host-side preparation failed (temp files, mountpoints).
        case setupFailed
        /// The engine could not start the container (namespace setup, exec).
        case cannotStart
        /// The engine's tool (proot) was not found.
        case toolNotFound
    }

    public var kind: Kind
    public var message: String
    public var exitStatus: Int32

    public init(_ kind: Kind, _ message: String, exitStatus: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.exitStatus = exitStatus ?? (kind == .toolNotFound ? 1 : 2)
    }

    public var description: String { message }

    public static func unsupportedMode(_ mode: ExecutionMode) -> EngineError {
        EngineError(
            .unsupportedMode,
            "execution mode \(mode.rawValue) (\(mode.summary)) is not implemented yet; "
                + "use one of \(ExecutionMode.implemented.map(\.rawValue).joined(separator: " ")) (udocker setup --execmode=N1 <container>)"
        )
    }

    static func invalid(_ message: String) -> EngineError { EngineError(.invalidOptions, message) }
}
