import Foundation

/// udocker's execution modes, plus N1 (native rootless user and mount namespaces).
public enum ExecutionMode: String, CaseIterable, Sendable {
    case P1, P2, F1, F2, F3, F4, R1, R2, R3, S1, N1

    /// Parses a mode name case-insensitively (`p1` → `.P1`).
    public init?(parsing text: String) {
        self.init(rawValue: text.trimmingCharacters(in: .whitespacesAndNewlines).uppercased())
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
