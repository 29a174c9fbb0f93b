/// An execution engine: runs a prepared container and returns the command's exit status
/// (128+signal when it was killed). Failures before the command starts throw `EngineError`.
public protocol ExecutionEngine: Sendable {
    var mode: ExecutionMode { get }
    func run(_ container: ContainerInstance, options: RunOptions) throws -> Int32
}
