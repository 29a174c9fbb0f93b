import Store

/// The execution mode is Store's (`Store.ExecutionMode`: a container records its mode); this
/// name keeps it visible to every user of Engines.
public typealias ExecutionMode = Store.ExecutionMode

extension ExecutionMode {
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
