import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// One result of the NVIDIA checks: `error` refuses the run, `warning` is printed, `info` is for
/// `doctor`.
public struct NVIDIAFinding: Sendable, Equatable, CustomStringConvertible {
    public enum Level: String, Sendable { case info, warning, error }
    public var level: Level
    public var message: String
    public var description: String { "\(level.rawValue): \(message)" }
}

/// The checks made before exec (and by `doctor`): driver present, library/kernel module versions
/// equal, the driver libraries' glibc needs vs the container's glibc, the image's CUDA vs the
/// driver's.
public enum NVIDIAPreflight {
    public struct Report: Sendable {
        public var findings: [NVIDIAFinding] = []
        /// The kernel module's version, when the driver is usable.
        public var version: String?
        /// The selected libraries (only when no error was found about them).
        public var libraries: [NVIDIADriver.File] = []
    }

    /// The host side only, for `doctor`: driver, versions, devices and GPUs beneath `hostRoot`
    /// (`UDOCKER_NVIDIA_ROOT` or `/`).
    public static func check(hostRoot: String) -> [NVIDIAFinding] {
        let driver = NVIDIADriver(root: hostRoot)
        var r = run(
            driver: driver, container: nil, imageEnvironment: [:], userEnvironment: [:],
            capabilities: NVIDIAFileList.defaultCapabilities, list: .builtIn)
        if let v = r.version, !r.findings.contains(where: { $0.level == .error }) {
            let cuda = driverCUDA(v).map { " (CUDA \($0.0).\($0.1))" } ?? ""
            let gpus = driver.gpus().map { "nvidia\($0.index)" }
            r.findings.insert(
                .init(
                    level: .info,
                    message: "NVIDIA driver \(v)\(cuda), \(r.libraries.count) libraries; GPUs: "
                        + (gpus.isEmpty ? "none" : gpus.joined(separator: " "))), at: 0)
        }
        return r.findings
    }

    /// Every check. `container` is the container root (nil: host checks only).
    static func run(
        driver: NVIDIADriver, container: String?, imageEnvironment: [String: String],
        userEnvironment: [String: String], capabilities: Set<String>, list: NVIDIAFileList
    ) -> Report {
        var report = Report()
        func error(_ m: String) -> Report { report.findings.append(.init(level: .error, message: m)); return report }
        let where_ = driver.root.isEmpty ? "" : " under \(driver.root)"
        let version = driver.kernelModuleVersion()
        let cache = try? driver.cache()
        let libcuda = cache.flatMap { driver.library("libcuda.so.1", cache: $0) }
        guard let version else {
            return error(
                "no NVIDIA driver\(where_): the kernel module is not loaded (no /proc/driver/nvidia/version)"
                    + (libcuda == nil ? " and libcuda.so.1 is not in /etc/ld.so.cache" : ""))
        }
        guard let cache, let libcuda else { return error("no NVIDIA driver\(where_): libcuda.so.1 is not in /etc/ld.so.cache") }
        // libnvidia-container's rule: the file behind the soname carries the module's version.
        let sonames: [(String, (host: String, name: String)?)] = [
            ("libcuda.so.1", libcuda), ("libnvidia-ml.so.1", driver.library("libnvidia-ml.so.1", cache: cache)),
        ]
        for (soname, found) in sonames {
            guard let lib = found else { continue }
            guard lib.name.hasSuffix(".so." + version) else {
                let theirs = lib.name.split(separator: ".so.", omittingEmptySubsequences: false).map(String.init).last ?? lib.name
                return error("driver/library version mismatch: \(soname) is \(theirs) (\(lib.host)), the kernel module is \(version)")
            }
        }
        guard driver.device("nvidiactl") != nil else {
            return error("no NVIDIA driver\(where_): /dev/nvidiactl is missing or not a character device")
        }
        if driver.device("nvidia-uvm") == nil {
            report.findings.append(
                .init(level: .warning, message: "/dev/nvidia-uvm is missing (nvidia_uvm module not loaded): CUDA will fail to initialise"))
        }
        report.version = version
        report.libraries = driver.libraries(version: version, capabilities: capabilities, list: list, cache: cache)
        for lib in report.libraries where !isNative(lib.host) {
            return error("\(lib.host) is not an ELF library for this machine")
        }
        guard let container else { return report }

        // glibc: the highest GLIBC_x.y the driver libraries need vs the container's libc.so.6.
        var need: (lib: String, name: String, version: [Int])?
        for lib in report.libraries {
            let needed = ELFFile.withFile(lib.host) { $0.versionsNeeded.values.flatMap { $0 } } ?? []
            if let h = DottedVersion.highestGLIBC(needed), need == nil || DottedVersion.less(need!.version, h.version) {
                need = (lib.links.first ?? lib.name, h.name, h.version)
            }
        }
        if let need {
            guard let have = containerGLIBC(container) else {
                return error("the container has no glibc (musl, busybox or static?): the NVIDIA driver needs \(need.name) (\(need.lib))")
            }
            if DottedVersion.less(have.version, need.version) {
                return error("\(need.lib) (\(version)) needs \(need.name); the container has \(have.name)")
            }
        }

        // CUDA: the image's requirement vs the driver's (NVIDIA_DISABLE_REQUIRE skips it).
        let disabled = [userEnvironment["NVIDIA_DISABLE_REQUIRE"], imageEnvironment["NVIDIA_DISABLE_REQUIRE"]]
            .contains { ($0 ?? "").isEmpty == false && $0 != "0" && $0?.lowercased() != "false" }
        if !disabled, let want = imageCUDA(imageEnvironment), let have = driverCUDA(version) {
            let wantText = "\(want.0).\(want.1)", haveText = "\(have.0).\(have.1)"
            if want.0 > have.0 {
                if hasCUDACompat(container) {
                    report.findings.append(
                        .init(
                            level: .warning,
                            message:
                                "the image needs CUDA \(wantText), driver \(version) supports \(haveText): relying on the image's cuda-compat"
                        ))
                } else {
                    return error(
                        "the image needs CUDA \(wantText) but driver \(version) supports up to CUDA \(haveText) "
                            + "(no cuda-compat in the image; set NVIDIA_DISABLE_REQUIRE=1 to run anyway)")
                }
            } else if want.0 == have.0 && want.1 > have.1 {
                report.findings.append(
                    .init(
                        level: .warning,
                        message: "the image needs CUDA \(wantText), driver \(version) supports \(haveText): "
                            + "minor-version compatibility only (PTX JIT may fail)"))
            }
        }
        return report
    }

    static func isNative(_ path: String) -> Bool {
        #if arch(x86_64)
        let machine: UInt16 = 62
        #elseif arch(arm64)
        let machine: UInt16 = 183
        #else
        return true
        #endif
        return ELFFile.withFile(path) { $0.machine == machine && $0.is64 } ?? false
    }

    /// The container's glibc: the highest GLIBC_x.y its libc.so.6 defines (found through its
    /// ld.so.cache or the usual directories, resolved inside the container root).
    static func containerGLIBC(_ container: String) -> (name: String, version: [Int])? {
        let root = try? RootDirectory(path: container)
        var candidates: [String] = []
        if let cache = try? LDCache.load(root: container), let e = cache.lookup("libc.so.6") { candidates.append(e.path) }
        candidates += [
            "/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6",
            "/usr/lib64/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/libc.so.6", "/usr/lib/libc.so.6",
        ]
        for c in candidates {
            guard let r = try? root?.resolve(c), r.exists, r.isRegularFile, !r.inVolume else { continue }
            if let h = ELFFile.withFile(r.hostPath, { DottedVersion.highestGLIBC($0.versionsDefined) }), let h { return h }
        }
        return nil
    }

    /// `CUDA_VERSION=12.4.1` or `NVIDIA_REQUIRE_CUDA="cuda>=12.4 brand=…"` → (12, 4).
    static func imageCUDA(_ env: [String: String]) -> (Int, Int)? {
        if let req = env["NVIDIA_REQUIRE_CUDA"] {
            for w in req.split(separator: " ") where w.hasPrefix("cuda>=") {
                if let v = DottedVersion.parse(String(w.dropFirst(6))), v.count >= 2 { return (v[0], v[1]) }
            }
        }
        if let v = env["CUDA_VERSION"].flatMap(DottedVersion.parse), v.count >= 2 { return (v[0], v[1]) }
        return nil
    }

    /// Driver branch → the newest CUDA it supports (NVIDIA's CUDA toolkit release notes, table 3).
    static let cudaByBranch: [(Int, (Int, Int))] = [
        (418, (10, 1)), (440, (10, 2)), (450, (11, 0)), (455, (11, 1)), (460, (11, 2)), (465, (11, 3)),
        (470, (11, 4)), (495, (11, 5)), (510, (11, 6)), (515, (11, 7)), (520, (11, 8)), (525, (12, 0)),
        (530, (12, 1)), (535, (12, 2)), (545, (12, 3)), (550, (12, 4)), (555, (12, 5)), (560, (12, 6)),
        (565, (12, 7)), (570, (12, 8)), (575, (12, 9)), (580, (13, 0)),
    ]

    /// The CUDA version a driver version supports (its branch, or the closest older one).
    public static func driverCUDA(_ version: String) -> (Int, Int)? {
        guard let major = version.split(separator: ".").first.flatMap({ Int($0) }) else { return nil }
        return cudaByBranch.last { $0.0 <= major }?.1
    }

    static func hasCUDACompat(_ container: String) -> Bool {
        guard let r = try? RootDirectory(path: container).resolve("/usr/local/cuda/compat"), r.exists, r.isDirectory, !r.inVolume,
            let names = try? FileManager.default.contentsOfDirectory(atPath: r.hostPath)
        else { return false }
        return names.contains { $0.hasPrefix("libcuda.so.") }
    }
}
