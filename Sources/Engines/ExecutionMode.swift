import ContainerModel

/// The execution mode is the model's (`ContainerModel.ExecutionMode`: a container records its
/// mode); this name keeps it visible to every user of Engines.
public typealias ExecutionMode = ContainerModel.ExecutionMode

extension ExecutionMode {
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

    /// Banner fill character (udocker: P `*`, F `#`, R `%`, S `/`).
    var bannerCharacter: Character {
        switch self {
        case .P1, .P2: return "*"
        case .F1, .F2, .F3, .F4: return "#"
        case .R1, .R2, .R3: return "%"
        case .S1: return "/"
        case .N1: return "="
        }
    }
}
