import ContainerModel
import Engines
import FoundationEssentials

extension ExecutionMode {
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
