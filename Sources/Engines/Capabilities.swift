import ContainerModel
import UDockerSystem
/// What an engine can honour. `EngineRunner` and the plan turn a missing capability into the
/// refusal or warning the user sees, so no command or engine checks modes by name.
public struct EngineCapabilities: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Runs overlay containers (`create --storage=overlay`) by mounting the overlay itself.
    public static let overlayRoot = EngineCapabilities(rawValue: 1 << 0)
    /// Honours `--device` (host devices in the runtime spec); the others see the host /dev.
    public static let deviceOption = EngineCapabilities(rawValue: 1 << 1)
    /// Honours `--kernel` (an emulated kernel release).
    public static let emulatedKernel = EngineCapabilities(rawValue: 1 << 2)
    /// Honours `-v host:cont:ro`.
    public static let readOnlyVolumes = EngineCapabilities(rawValue: 1 << 3)
    /// Works when this udocker already runs under PRoot (engines that use PRoot do not).
    public static let nestsUnderPRoot = EngineCapabilities(rawValue: 1 << 4)
    /// Runs the command as any `--user` (uid and gid inside the container).
    public static let anyUser = EngineCapabilities(rawValue: 1 << 5)
    /// Passes descriptors it inherits on to the command (a PMI-1 launcher's `PMI_FD`); an OCI
    /// runtime does not.
    public static let passesDescriptors = EngineCapabilities(rawValue: 1 << 6)

    // Traits: what an engine is like, where the shared plan must do things differently. The plan
    // asks for these, never for a mode by name (`SharedPlanTests`).

    /// Volumes are host paths seen at the same path inside (Fakechroot): nothing is bound over a
    /// container file, and a host path cannot appear at another container path.
    public static let volumesKeepHostPath = EngineCapabilities(rawValue: 1 << 16)
    /// Shows a per-run `/dev` with only the selected devices, bound into the container (N1, PRoot).
    public static let perRunDevices = EngineCapabilities(rawValue: 1 << 17)
    /// The command runs in a user namespace of its own (N1, the R modes): ranks of one job cannot
    /// open each other's `/proc/<pid>/fd` or memory (CMA) unless they share it.
    public static let ownUserNamespace = EngineCapabilities(rawValue: 1 << 18)
    /// Runs the command as your own uid only through an outer user namespace (`RuncIdentity`: R1).
    public static let identityThroughOuterNamespace = EngineCapabilities(rawValue: 1 << 19)
    /// Records the container's mode itself when it converts the container (Fakechroot), so an
    /// automatic fallback to it must not record the mode first.
    public static let recordsOwnMode = EngineCapabilities(rawValue: 1 << 20)
    /// The ranks of a job step on a node share one instance of its namespaces (`JobJoin`: N1), so
    /// single copy between them works.
    public static let joinsJobSteps = EngineCapabilities(rawValue: 1 << 21)
}

/// A capability a run asks for and its engine lacks: the refusal or warning, in the words users
/// have always seen.
public enum CapabilityNotice: Sendable, Equatable {
    case readOnlyVolumes(ExecutionMode)
    /// A host file udocker binds read-only (`ExecutionPlan.Mount.hostFile`) that the user can change.
    case writableHostFile(ExecutionMode, path: String)
    case kernelIgnored(ExecutionMode)
    case deviceIgnored(ExecutionMode)
    case overlayNeedsN1(container: String, mode: ExecutionMode)
    case nestedPRoot(ExecutionMode, tracer: String)

    public var message: String {
        switch self {
        case .readOnlyVolumes(let m):
            return "read-only volumes (-v host:cont:ro) are not supported by \(m.rawValue) (\(m.summary)): use N1, R1-R3 or S1, or drop :ro"
        case .writableHostFile(let m, let path):
            return "\(m.rawValue) (\(m.summary)) cannot bind host files read-only, and you can change \(path): "
                + "the container could too; use N1, R1-R3 or S1, or make it read-only (chmod a-w, also its directory)"
        case .kernelIgnored(let m):
            return "--kernel is ignored by \(m.rawValue) (P1/P2 only)"
        case .deviceIgnored(let m):
            return "--device is only used by the R modes (\(m.rawValue) sees the host /dev)"
        case .overlayNeedsN1(let c, let m):
            return "overlay container \(c) runs in N1 only; make it flat first: udocker setup --execmode=\(m.rawValue) \(c)"
        case .nestedPRoot(let m, let tracer):
            return "\(m.rawValue) cannot run here: this udocker already runs under PRoot (\(tracer)), and PRoot "
                + "inside PRoot does not work; use F1 for the inner container, or run the outer one in R1 or N1"
        }
    }

    /// As an engine error (refusals).
    public var error: EngineError {
        switch self {
        case .nestedPRoot: return EngineError(.cannotStart, message)
        // udocker's wording and status for a container the mode cannot run.
        case .overlayNeedsN1: return EngineError(.invalidArgument, message, exitStatus: 1)
        default: return EngineError(.invalidArgument, message)
        }
    }
}
