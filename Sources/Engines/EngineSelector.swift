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

    /// N1 where unprivileged user namespaces work, else P1.
    public static func defaultMode(environment: EngineEnvironment) -> ExecutionMode {
        userNamespaceProblem() == nil ? .N1 : .P1
    }

    /// nil when N1 can work here, else why not (one line).
    public static func userNamespaceProblem() -> String? {
        var err = udocker_exec_error_t()
        let code = udocker_userns_probe(&err)
        if code == 0 { return nil }
        func sysctl(_ path: String) -> String? {
            (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if sysctl("/proc/sys/user/max_user_namespaces") == "0" {
            return "user namespaces are disabled: user.max_user_namespaces=0"
        }
        if sysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0" {
            return "user namespaces are disabled: kernel.unprivileged_userns_clone=0"
        }
        if sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" {
            return "user namespaces are restricted by AppArmor: kernel.apparmor_restrict_unprivileged_userns=1"
        }
        let step = withUnsafeBytes(of: err.step) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return "cannot use user namespaces: \(step): \(String(cString: strerror(code)))"
    }
}
