import FoundationEssentials
import UDockerSystem

/// udocker's execution modes, plus N1 (native rootless user and mount namespaces): the bare
/// names. A container records its mode (Store); what each is, the engines say (`summary`, the
/// banner) and the commands (help texts).
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

    /// Every mode in the order help texts list them.
    public static let listed: [ExecutionMode] = [.N1, .P1, .P2, .F1, .F2, .F3, .F4, .R1, .R2, .R3, .S1]

    /// `N1 P1 P2 F1 … S1`, for option help and error messages.
    public static var names: String { listed.map(\.rawValue).joined(separator: " ") }
}
