import CLinux
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// One finding of `udocker doctor`: ✔ (ok), ! (warning: works, with a caveat) or ✘ (failed).
public struct HostFinding: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable { case ok, warning, failed }
    /// What was checked: "N1", "P1/P2", "repository", …
    public var check: String
    public var status: Status
    /// One line: what works, or exactly why not.
    public var summary: String
    /// Facts behind it (tool paths and versions, sysctl values, sizes).
    public var details: [String]
    /// What to do about it (nil when nothing is needed).
    public var fix: String?

    public init(check: String, status: Status, summary: String, details: [String] = [], fix: String? = nil) {
        self.check = check; self.status = status; self.summary = summary; self.details = details; self.fix = fix
    }
}

/// What a check may look at.
public struct HostCheckContext: Sendable {
    public var environment: EngineEnvironment
    /// The repository's top directory (`UDOCKER_DIR`).
    public var repository: String
    public init(environment: EngineEnvironment, repository: String) {
        self.environment = environment; self.repository = repository
    }
    public var tools: ToolLocator { ToolLocator(environment: environment) }
}

/// One check of `udocker doctor`: one small type each; a new one (e.g. a GPU pre-flight) is one
/// more entry in `HostChecks.standard`.
public protocol HostCheck: Sendable {
    func run(_ context: HostCheckContext) -> [HostFinding]
}

public enum HostChecks {
    /// Everything `udocker doctor` reports, in order.
    public static var standard: [any HostCheck] {
        [
            SystemCheck(), NativeCheck(), OverlayCheck(), PRootCheck(), FakechrootCheck(), RuncCheck(), ApptainerCheck(), NVIDIACheck(),
            RepositoryCheck(),
        ]
    }

    public static func run(_ checks: [any HostCheck] = standard, context: HostCheckContext) -> [HostFinding] {
        checks.flatMap { $0.run(context) }
    }
}

/// Host probes shared by `doctor` and the engine choice of `run`.
public enum HostProbe {
    /// nil when N1 can work here, else why not (one line).
    public static func userNamespaceProblem() -> String? {
        var err = cl_exec_error_t()
        let code = cl_userns_probe(&err)
        if code == 0 { return nil }
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
        if code == EPERM, seccompFiltered {
            return "\(step) is refused by a seccomp filter on this process (Seccomp: 2 in /proc/self/status)"
        }
        return "cannot use user namespaces: \(step): \(String(cString: strerror(code)))"
    }

    /// nil when ptrace works (PRoot), else why not.
    public static func ptraceProblem() -> String? {
        let code = cl_ptrace_probe()
        if code == 0 { return nil }
        if sysctl("/proc/sys/kernel/yama/ptrace_scope") == "3" {
            return "ptrace is disabled: kernel.yama.ptrace_scope=3"
        }
        if code == EPERM, seccompFiltered {
            return "ptrace is refused by a seccomp filter on this process (Seccomp: 2 in /proc/self/status)"
        }
        return "ptrace(PTRACE_TRACEME) fails: \(String(cString: strerror(code)))"
    }

    /// This process runs under a seccomp filter (a container runtime or the batch system put it there).
    static var seccompFiltered: Bool {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").contains { $0.hasPrefix("Seccomp:") && $0.hasSuffix("2") }
    }

    /// A `/proc/sys` value, trimmed; nil when absent.
    static func sysctl(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmed()
    }

    /// The version a tool prints for `--version` (the first dotted number in its output), or nil.
    static func version(of path: String, arguments: [String] = ["--version"]) -> String? {
        guard
            let run = try? Subprocess.run(
                path, arguments, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"], errorOutput: .capture)
        else { return nil }
        return firstVersion(in: Array(run.output.prefix(8192)))
    }

    /// The first dotted number in `text` ("1.2", "3.4.5-rc1", "2.34+deb12"): a run of digits, a dot
    /// and a digit, then every following digit, letter or `.+~-`. Scanned by hand, as the regex
    /// `[0-9]+\.[0-9]+(\.[0-9]+)?[0-9A-Za-z.+~-]*` would match: no pattern parsed at every call.
    public static func firstVersion(in text: [UInt8]) -> String? {
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        func isTail(_ c: UInt8) -> Bool {
            isDigit(c) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == 0x2E || c == 0x2B || c == 0x7E || c == 0x2D
        }
        var i = 0
        while i < text.count {
            guard isDigit(text[i]) else {
                i += 1
                continue
            }
            let start = i
            while i < text.count, isDigit(text[i]) { i += 1 }
            guard i + 1 < text.count, text[i] == 0x2E, isDigit(text[i + 1]) else { continue }
            while i < text.count, isTail(text[i]) { i += 1 }
            return String(decoding: text[start..<i], as: UTF8.self)
        }
        return nil
    }

    /// "tool 1.2.3 (/usr/bin/tool, from PATH)".
    static func describe(_ name: String, _ tool: ToolLocator.Tool, version: String?) -> String {
        let origin =
            switch tool.origin {
            case .setting: "from the UDOCKER_USE_* setting"
            case .path: "from PATH"
            case .binDir: "from the repository's bin/"
            }
        return "\(name) \(version ?? "(version unknown)") at \(tool.path) (\(origin))"
    }
}
