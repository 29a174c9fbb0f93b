import CLinux
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// N1: unprivileged user namespaces (and the sysctls that switch them off).
public struct NativeCheck: HostCheck {
    public init() {}
    public func run(_ context: HostCheckContext) -> [HostFinding] {
        var facts: [String] = []
        for (name, path) in [
            ("user.max_user_namespaces", "/proc/sys/user/max_user_namespaces"),
            ("kernel.unprivileged_userns_clone", "/proc/sys/kernel/unprivileged_userns_clone"),
            ("kernel.apparmor_restrict_unprivileged_userns", "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
        ] {
            if let v = HostProbe.sysctl(path) { facts.append("\(name)=\(v)") }
        }
        guard let problem = HostProbe.userNamespaceProblem() else {
            return [HostFinding(check: "N1", status: .ok, summary: "unprivileged user namespaces work", details: facts)]
        }
        let fix: String
        if let admin = HostProbe.userNamespaceAdminFix(problem) {
            fix = "ask the administrators for: \(admin) (or use P1/F3)"
        } else if problem.contains("seccomp") {
            fix = "run udocker outside the container or job wrapper that installs the filter, or use F3"
        } else {
            fix = "use P1 or F3: udocker setup --execmode=P1 CONTAINER"
        }
        return [HostFinding(check: "N1", status: .failed, summary: problem, details: facts, fix: fix)]
    }
}

extension HostProbe {
    /// What an administrator changes to enable user namespaces, for a `userNamespaceProblem`.
    public static func userNamespaceAdminFix(_ problem: String) -> String? {
        if problem.contains("max_user_namespaces") { return "sysctl -w user.max_user_namespaces=15000" }
        if problem.contains("unprivileged_userns_clone") { return "sysctl -w kernel.unprivileged_userns_clone=1" }
        if problem.contains("AppArmor") {
            return "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for udocker"
        }
        return nil
    }
}

/// N1 overlay containers: overlayfs mounted inside a user namespace (kernel ≥ 5.11, `userxattr`).
public struct OverlayCheck: HostCheck {
    public init() {}
    public func run(_ context: HostCheckContext) -> [HostFinding] {
        let name = "N1 overlay"
        if let problem = HostProbe.userNamespaceProblem() {
            return [
                HostFinding(
                    check: name, status: .failed, summary: "needs user namespaces: \(problem)",
                    fix: "use flat containers (the default)")
            ]
        }
        let base = context.environment.tmpDir + "/udocker-doctor-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: base) }
        do {
            for d in ["lower", "upper", "work", "merged"] {
                try FileManager.default.createDirectory(atPath: "\(base)/\(d)", withIntermediateDirectories: true)
            }
        } catch {
            return [
                HostFinding(
                    check: name, status: .warning,
                    summary: "not tested: cannot create a scratch directory in \(context.environment.tmpDir): \(error)")
            ]
        }
        var err = cl_exec_error_t()
        var release: Int32 = -1
        let pid = cl_overlay_view(base, "lowerdir=lower,upperdir=upper,workdir=work,userxattr", base + "/merged", &release, &err)
        guard pid > 0 else {
            let step = withUnsafeBytes(of: err.step) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            return [
                HostFinding(
                    check: name, status: .failed,
                    summary:
                        "overlayfs cannot be mounted in a user namespace here (\(step): \(String(cString: strerror(err.error_number))))",
                    details: [
                        "needs Linux >= 5.11 and a local upper directory (not NFS/Lustre/GPFS)", "scratch: \(context.environment.tmpDir)",
                    ],
                    fix: "use flat containers (the default: create --storage=flat)")
            ]
        }
        close(release)
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        return [HostFinding(check: name, status: .ok, summary: "overlayfs mounts in a user namespace (create --storage=overlay works)")]
    }
}

/// P1/P2: proot found, and ptrace allowed.
public struct PRootCheck: HostCheck {
    public init() {}
    public func run(_ context: HostCheckContext) -> [HostFinding] {
        let tool: ToolLocator.Tool
        do { tool = try context.tools.proot() } catch {
            return [
                HostFinding(
                    check: "P1/P2", status: .failed, summary: "\(error)",
                    fix: "apt-get install proot, or put a static proot in \(context.environment.binDir), "
                        + "or set UDOCKER_USE_PROOT_EXECUTABLE=/path/to/proot")
            ]
        }
        let facts = [HostProbe.describe("proot", tool, version: HostProbe.version(of: tool.path))]
        if let problem = HostProbe.ptraceProblem() {
            return [
                HostFinding(
                    check: "P1/P2", status: .failed, summary: problem, details: facts,
                    fix: "ptrace must be allowed (kernel.yama.ptrace_scope <= 2, no seccomp filter refusing it); else use N1 or F3")
            ]
        }
        return [HostFinding(check: "P1/P2", status: .ok, summary: "proot and ptrace work", details: facts)]
    }
}

/// F1–F4: a libfakechroot to preload (patchelf only matters for F4's on-the-fly patching).
public struct FakechrootCheck: HostCheck {
    public init() {}
    public func run(_ context: HostCheckContext) -> [HostFinding] {
        var facts: [String] = []
        let library: ToolLocator.Tool
        do { library = try context.tools.fakechrootLibrary() } catch {
            return [
                HostFinding(
                    check: "F1-F4", status: .failed, summary: "\(error)",
                    fix: "apt-get install fakechroot, or set UDOCKER_FAKECHROOT_SO=/path/to/libfakechroot.so")
            ]
        }
        facts.append("libfakechroot at \(library.path)")
        if let fc = try? context.tools.locate(
            variable: "", setting: .pathOnly, pathNames: ["fakechroot"], binNames: [],
            binDirFirst: false, missing: ""),
            let v = HostProbe.version(of: fc.path)
        {
            facts.append("fakechroot \(v) at \(fc.path)")
        }
        if let pe = try? context.tools.patchelf() {
            facts.append(HostProbe.describe("patchelf", pe, version: HostProbe.version(of: pe.path)))
        } else {
            facts.append("patchelf not found (optional)")
        }
        return [HostFinding(check: "F1-F4", status: .ok, summary: "libfakechroot found (runs as you; no root emulation)", details: facts)]
    }
}

/// R1–R3: an OCI runtime, rootless (needs user namespaces); R2/R3 also proot.
public struct RuncCheck: HostCheck {
    public init() {}
    public func run(_ context: HostCheckContext) -> [HostFinding] {
        let tool: ToolLocator.Tool
        do { tool = try context.tools.ociRuntime() } catch {
            return [
                HostFinding(
                    check: "R1-R3", status: .failed, summary: "\(error)",
                    fix: "apt-get install runc (or crun), or set UDOCKER_USE_RUNC_EXECUTABLE=/path/to/runc")
            ]
        }
        var facts = [HostProbe.describe(PathName.basename(tool.path), tool, version: HostProbe.version(of: tool.path))]
        if let problem = HostProbe.userNamespaceProblem() {
            return [
                HostFinding(
                    check: "R1-R3", status: .failed, summary: "rootless runc needs user namespaces: \(problem)",
                    details: facts, fix: "see N1 above, or use P1/F3")
            ]
        }
        if (try? context.tools.proot()) == nil {
            facts.append("R2/R3 also need proot: not found")
            return [
                HostFinding(
                    check: "R1-R3", status: .warning, summary: "R1 works; R2/R3 need proot", details: facts,
                    fix: "apt-get install proot for R2/R3")
            ]
        }
        return [HostFinding(check: "R1-R3", status: .ok, summary: "rootless OCI runtime and user namespaces work", details: facts)]
    }
}

/// S1: a host apptainer or singularity.
public struct ApptainerCheck: HostCheck {
    public init() {}
    public func run(_ context: HostCheckContext) -> [HostFinding] {
        do {
            let tool = try context.tools.apptainer()
            let name = PathName.basename(tool.path)
            return [
                HostFinding(
                    check: "S1", status: .ok, summary: "\(name) found",
                    details: [HostProbe.describe(name, tool, version: HostProbe.version(of: tool.path))])
            ]
        } catch {
            return [
                HostFinding(
                    check: "S1", status: .failed, summary: "apptainer/singularity not found",
                    fix: "install Apptainer (https://apptainer.org), or set UDOCKER_USE_SINGULARITY_EXECUTABLE")
            ]
        }
    }
}
