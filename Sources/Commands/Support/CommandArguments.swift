import ContainerModel
import ArgumentParser
import Engines
import Store
import UDockerSystem

/// `run --pull`: when the image is fetched for `run IMAGE`.
enum PullPolicy: String, CaseIterable, ExpressibleByArgument {
    /// Pull only when the image is not in the repository (the default).
    case missing
    case never
    case always
    /// With `--name`: run the existing container of that name instead of creating one.
    case reuse
}

/// `--execmode=p1` works as `P1` (as in udocker); an empty value is dropped before parsing.
extension ExecutionMode: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

/// `--storage=flat|overlay`, case-insensitive.
extension ContainerStorage: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.trimmed(where: \.isBlank).lowercased()) }
}
