import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Nesting rules (udocker `docs/user_manual.md` §8): PRoot inside PRoot does not work (a traced
/// process tracing its children hangs or crawls), so P1/P2, and R2/R3 which run PRoot inside,
/// are refused with a clear message when this process already runs under PRoot.
/// P inside R1, F inside P or R, and so on are left alone.
public enum EngineNesting {
    /// A description of the PRoot tracing this process ("proot, pid N"), or nil.
    public static func prootTracer(status: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let text = status ?? (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        var tracer: Int32 = 0
        for line in text.split(separator: "\n") where line.hasPrefix("TracerPid:") {
            tracer = Int32(line.dropFirst("TracerPid:".count).trimmed(where: \.isBlank)) ?? 0
        }
        guard tracer > 0 else { return nil }
        let comm = ((try? String(contentsOfFile: "/proc/\(tracer)/comm", encoding: .utf8)) ?? "")
            .trimmed()
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(tracer)/exe")) ?? ""
        let looksLikeProot =
            comm.lowercased().contains("proot") || PathName.basename(exe).lowercased().contains("proot")
            || environment.keys.contains { $0.hasPrefix("PROOT_") }
        return looksLikeProot ? "\(comm.isEmpty ? "proot" : comm), pid \(tracer)" : nil
    }
}
