/// A warning of the shared plan, printed by the runner at warning level unless the engine
/// hides its kind (`EngineRun.hiddenWarnings`): typed, so an engine names what it hides instead
/// of matching the text.
public enum PlanWarning: Sendable, Hashable {
    /// `$HOME` (the default working directory) is missing in the container: `/` is used.
    case homeNotFound(directory: String)
    /// No command given and none in the image: `bash -i`.
    case assumingShell
    /// An image `Env` item that is not `KEY=VALUE` (the printable text).
    case invalidImageVariable(String)
    /// A `--env-file` line that is not `K=V` (the whole warning).
    case envFileLine(String)
    /// The `--user` is not in the container's passwd.
    case userWillBeCreated
    /// A run option this mode cannot honour (`CapabilityNotice`).
    case optionIgnored(String)
    /// A GPU note (`--nvidia`, `--gpus`, `NVIDIA_VISIBLE_DEVICES`).
    case gpu(String)

    /// The case without its text (what `EngineRun.hiddenWarnings` holds).
    public enum Kind: Sendable, Hashable {
        case homeNotFound, assumingShell, invalidImageVariable, envFileLine, userWillBeCreated, optionIgnored, gpu
    }

    public var kind: Kind {
        switch self {
        case .homeNotFound: return .homeNotFound
        case .assumingShell: return .assumingShell
        case .invalidImageVariable: return .invalidImageVariable
        case .envFileLine: return .envFileLine
        case .userWillBeCreated: return .userWillBeCreated
        case .optionIgnored: return .optionIgnored
        case .gpu: return .gpu
        }
    }

    /// The lines to print: the messages of `warnings` whose kind is not in `hidden`.
    public static func shown(_ warnings: [PlanWarning], hiding hidden: Set<Kind>) -> [String] {
        warnings.filter { !hidden.contains($0.kind) }.map(\.message)
    }

    /// The line the user sees.
    public var message: String {
        switch self {
        case .homeNotFound(let directory): return "home directory \(directory) not found in the container, using /"
        case .assumingShell: return "no command given, assuming: bash -i"
        case .invalidImageVariable(let item): return "ignoring invalid variable in the image Env: \(item)"
        case .envFileLine(let text), .optionIgnored(let text), .gpu(let text): return text
        case .userWillBeCreated: return "non-existing user will be created"
        }
    }
}
