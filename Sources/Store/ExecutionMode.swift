import FoundationEssentials
import UDockerSystem

/// udocker's execution modes, plus N1 (native rootless user and mount namespaces). Owned by
/// Store, which records a container's mode (`ContainerRecord`); Engines re-exports it.
public enum ExecutionMode: String, CaseIterable, Sendable {
    case P1, P2, F1, F2, F3, F4, R1, R2, R3, S1, N1

    /// The Fakechroot modes (their conversion records travel with a clone).
    public var isFakechroot: Bool { [.F1, .F2, .F3, .F4].contains(self) }

    /// Parses a mode name case-insensitively (`p1` → `.P1`).
    public init?(parsing text: String) {
        self.init(rawValue: text.trimmed().uppercased())
    }

    /// The modes this build can run.
    public static let implemented: [ExecutionMode] = [.N1, .P1, .P2, .R1, .R2, .R3, .S1, .F1, .F2, .F3, .F4]
    public var isImplemented: Bool { Self.implemented.contains(self) }

    /// One line for `setup` and error messages.
    public var summary: String {
        switch self {
        case .P1: return "PRoot with seccomp acceleration"
        case .P2: return "PRoot without seccomp"
        case .F1, .F2, .F3, .F4: return "Fakechroot"
        case .R1, .R2, .R3: return "runc/crun rootless"
        case .S1: return "Singularity/Apptainer"
        case .N1: return "native user and mount namespaces"
        }
    }

    /// Every mode in the order help texts list them.
    public static let listed: [ExecutionMode] = [.N1, .P1, .P2, .F1, .F2, .F3, .F4, .R1, .R2, .R3, .S1]

    /// `N1 P1 P2 F1 … S1`, for option help and error messages.
    public static var names: String { listed.map(\.rawValue).joined(separator: " ") }

    /// What the mode is, in one line (help texts).
    public var helpDescription: String {
        switch self {
        case .N1: return "native user and mount namespaces, no helper (default where user namespaces work)"
        case .P1: return "PRoot with seccomp acceleration"
        case .P2: return "PRoot without seccomp"
        case .F1: return "Fakechroot (LD_PRELOAD), the container's loader run directly"
        case .F2: return "F1 with the loader patched (no host ld.so.cache or default dirs)"
        case .F3: return "F2 with every ELF interpreter and RUNPATH patched"
        case .F4: return "F3 with the variables for on-the-fly patching"
        case .R1: return "runc/crun rootless (user namespace)"
        case .R2: return "R1 with PRoot inside (any uid)"
        case .R3: return "R2 with PRoot's seccomp off"
        case .S1: return "Apptainer/Singularity"
        }
    }

    /// `  N1  native …` lines for the general and `setup` help.
    public static var helpTable: String { listed.map { "  \($0.rawValue)  \($0.helpDescription)" }.joined(separator: "\n") }
}
