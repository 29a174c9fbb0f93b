import CLinux
import Foundation

/// Chooses and builds engines.
public enum EngineSelector {
    /// The engine for `mode`; modes not implemented yet throw `EngineError.unsupportedMode`.
    public static func engine(for mode: ExecutionMode, environment: EngineEnvironment) throws -> any ExecutionEngine {
        switch mode {
        case .N1: return NativeEngine(environment: environment)
        case .P1, .P2: return NestingCheckedEngine(inner: PRootEngine(mode: mode, environment: environment))
        case .R1, .R2, .R3: return RuncEngine(mode: mode, environment: environment)
        case .S1: return SingularityEngine(environment: environment)
        case .F1, .F2, .F3, .F4: return FakechrootEngine(mode: mode, environment: environment)
        default: throw EngineError.unsupportedMode(mode)
        }
    }

    /// The order in which a container with no mode of its own tries the engines: the fastest and
    /// most faithful first (N1: own code, no tool), then rootless runc, PRoot, and Fakechroot
    /// (which works almost anywhere but cannot change the user).
    public static let automaticOrder: [ExecutionMode] = [.N1, .R1, .P1, .F3]

    /// Why `mode` cannot run on this host (one line), or nil when it can: the same probes as
    /// `udocker doctor`.
    public static func problem(with mode: ExecutionMode, environment: EngineEnvironment) -> String? {
        let tools = ToolLocator(environment: environment)
        switch mode {
        case .N1:
            return HostProbe.userNamespaceProblem()
        case .R1, .R2, .R3:
            do { _ = try tools.ociRuntime(mode: mode) } catch { return "runc not found" }
            return HostProbe.userNamespaceProblem() == nil ? nil : "rootless runc needs user namespaces too"
        case .P1, .P2:
            do { _ = try tools.proot() } catch { return "proot not found" }
            return HostProbe.ptraceProblem()
        case .F1, .F2, .F3, .F4:
            do { _ = try tools.fakechrootLibrary() } catch { return "libfakechroot not found" }
            return nil
        case .S1:
            do { _ = try tools.apptainer() } catch { return "apptainer/singularity not found" }
            return nil
        default:
            return "unsupported mode"
        }
    }

    /// The first engine of `automaticOrder` after `failed` that works here (nil when none does),
    /// and why each one before it does not (`failed`'s own reason first).
    public static func fallback(after failed: ExecutionMode, reason: String,
                                environment: EngineEnvironment) -> (mode: ExecutionMode?, skipped: [String]) {
        var skipped = ["\(failed.rawValue): \(reason)"]
        for mode in automaticOrder.drop(while: { $0 != failed }).dropFirst() {
            guard let why = problem(with: mode, environment: environment) else { return (mode, skipped) }
            skipped.append("\(mode.rawValue): \(why)")
        }
        return (nil, skipped)
    }

    /// The best engine of `automaticOrder` that works here (N1 when nothing does: its error then
    /// says why).
    public static func defaultMode(environment: EngineEnvironment) -> ExecutionMode {
        automaticOrder.first { problem(with: $0, environment: environment) == nil } ?? .N1
    }

    /// nil when N1 can work here, else why not (one line).
    public static func userNamespaceProblem() -> String? { HostProbe.userNamespaceProblem() }
}
