import ContainerModel
import FoundationEssentials
import Store
import Synchronization
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The one lookup of the host tools the engines use (proot, runc/crun/runsc, apptainer/singularity,
/// patchelf, libfakechroot), as udocker searches them: the `UDOCKER_USE_<TOOL>_EXECUTABLE`
/// setting (a path; `UDOCKER` = the repository's bin/ only), else PATH and the repository's bin/
/// in the tool's order. `run` and `doctor` both ask here, so they can never disagree.
public struct ToolLocator: Sendable {
    public var environment: EngineEnvironment

    public init(environment: EngineEnvironment) { self.environment = environment }

    /// A found tool and where it came from.
    public struct Tool: Sendable, Equatable {
        public enum Origin: String, Sendable { case setting, path, binDir }
        public var path: String
        public var origin: Origin
    }

    /// Not found, or found but not safe to run (`vetted`): the message says what was searched or
    /// what is wrong, and how to fix it.
    public struct NotFound: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// How a `UDOCKER_USE_*_EXECUTABLE` value steers the search.
    enum Setting: Equatable {
        case file(String), binDirOnly, pathOnly, both
        init(_ value: String?, emptyMeansPathOnly: Bool) {
            switch value {
            case nil: self = .both
            case "UDOCKER": self = .binDirOnly
            case "": self = emptyMeansPathOnly ? .pathOnly : .both
            case let v?: self = .file(v)
            }
        }
    }

    /// The general search: `setting`, else `pathNames` on PATH and `binNames` in bin/ (bin/ first
    /// when `binDirFirst`).
    func locate(
        variable: String, setting: Setting, pathNames: [String], binNames: [String],
        binDirFirst: Bool, missing: String
    ) throws(NotFound) -> Tool {
        if case .file(let f) = setting {
            guard Self.isExecutableFile(f) else { throw NotFound(message: "\(missing): \(variable)=\(f) is not an executable file") }
            return try Self.vetted(Tool(path: f, origin: .setting))
        }
        let inPath = { () -> Tool? in
            guard setting != .binDirOnly else { return nil }
            let path = environment.hostEnvironment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            for name in pathNames {
                for dir in path.split(separator: ":") where dir.hasPrefix("/") {
                    let p = "\(dir)/\(name)"
                    if Self.isExecutableFile(p) { return Tool(path: p, origin: .path) }
                }
            }
            return nil
        }
        let inBin = { () -> Tool? in
            guard setting != .pathOnly else { return nil }
            return binNames.map { environment.binDir + "/" + $0 }.first(where: Self.isExecutableFile)
                .map { Tool(path: $0, origin: .binDir) }
        }
        if let t = binDirFirst ? (inBin() ?? inPath()) : (inPath() ?? inBin()) { return try Self.vetted(t) }
        throw NotFound(message: missing)
    }

    /// proot: `UDOCKER_USE_PROOT_EXECUTABLE` (a path; "UDOCKER" = bin/ only; "" = PATH only), else
    /// `<bin>/proot-<arch>-4_8_0`, `proot-<arch>`, `proot`, else `proot` on PATH.
    public func proot() throws(NotFound) -> Tool {
        let arch = Self.udockerArch
        var names = ["proot-\(arch)", "proot"]
        if Self.kernelAtLeast(4, 8) { names.insert("proot-\(arch)-4_8_0", at: 0) }
        return try locate(
            variable: "UDOCKER_USE_PROOT_EXECUTABLE",
            setting: Setting(environment.prootExecutable, emptyMeansPathOnly: true),
            pathNames: ["proot"], binNames: names, binDirFirst: true,
            missing:
                "proot not found: run 'udocker install' (udockertools), install it (apt-get install proot), or put it in \(environment.binDir)"
        )
    }

    /// runc, crun or runsc: `UDOCKER_USE_RUNC_EXECUTABLE`, else PATH, else bin/.
    /// `mode` prefixes the not-found message (the run's mode; none for doctor and version).
    public func ociRuntime(mode: ExecutionMode? = nil) throws(NotFound) -> Tool {
        let arch = Self.udockerArch
        return try locate(
            variable: "UDOCKER_USE_RUNC_EXECUTABLE",
            setting: Setting(environment.runcExecutable, emptyMeansPathOnly: false),
            pathNames: ["runc", "crun", "runsc"], binNames: ["runc-\(arch)", "runc", "crun-\(arch)", "crun"],
            binDirFirst: false,
            missing:
                "\(mode.map { $0.rawValue + ": " } ?? "")runc not found: run 'udocker install' (udockertools), install it (apt-get install runc), or crun, or put it in "
                + "\(environment.binDir), or set UDOCKER_USE_RUNC_EXECUTABLE")
    }

    /// apptainer or singularity: `UDOCKER_USE_SINGULARITY_EXECUTABLE`, else PATH, else bin/.
    public func apptainer() throws(NotFound) -> Tool {
        let arch = Self.udockerArch
        return try locate(
            variable: "UDOCKER_USE_SINGULARITY_EXECUTABLE",
            setting: Setting(environment.singularityExecutable, emptyMeansPathOnly: false),
            pathNames: ["apptainer", "singularity"],
            binNames: ["apptainer-\(arch)", "apptainer", "singularity-\(arch)", "singularity"], binDirFirst: false,
            missing: "S1: apptainer/singularity not found: install Apptainer (https://apptainer.org; not "
                + "packaged in Debian 12), put it in \(environment.binDir), or set UDOCKER_USE_SINGULARITY_EXECUTABLE")
    }

    /// patchelf: `UDOCKER_USE_PATCHELF_EXECUTABLE`, else bin/, else PATH (F4 uses only udocker's own
    /// build with `--set-root-prefix`; doctor reports any).
    public func patchelf() throws(NotFound) -> Tool {
        let arch = Self.udockerArch
        return try locate(
            variable: "UDOCKER_USE_PATCHELF_EXECUTABLE",
            setting: Setting(environment.hostEnvironment["UDOCKER_USE_PATCHELF_EXECUTABLE"], emptyMeansPathOnly: false),
            pathNames: ["patchelf"], binNames: ["patchelf-\(arch)", "patchelf"], binDirFirst: true,
            missing: "patchelf not found (optional: F4 patches on the fly only with udocker's patchelf)")
    }

    /// Where the distribution's fakechroot package puts the library (the last resort).
    public static let systemFakechrootLibraries: [String] =
        ["x86_64-linux-gnu", "aarch64-linux-gnu", "i386-linux-gnu", "arm-linux-gnueabihf", "powerpc64le-linux-gnu"]
        .map { "/usr/lib/\($0)/fakechroot/libfakechroot.so" }
        + ["/usr/lib64/fakechroot/libfakechroot.so", "/usr/lib/fakechroot/libfakechroot.so"]

    /// `$UDOCKER_DIR/lib`, where udocker's own libfakechroot builds go.
    public var libraryDirectory: String { PathName.parent(environment.binDir) + "/lib" }

    /// The container a libfakechroot is chosen for (udocker's `select_fakechroot_so` names).
    public struct FakechrootTarget: Sendable {
        public var containerDirectory: String
        public var distribution: String?
        public var version: String?
        public var architectures: [String]

        public init(containerDirectory: String, distribution: String?, version: String?, architectures: [String]) {
            self.containerDirectory = containerDirectory; self.distribution = distribution
            self.version = version; self.architectures = architectures
        }
    }

    /// The libfakechroot the F modes preload (the one lookup: `run` for a container, `doctor` and
    /// `version` without one): `UDOCKER_FAKECHROOT_SO`; for a container, a `libfakechroot.so` in
    /// its directory that is your own regular file nobody else can write, then udocker's builds in
    /// lib/ named for its distribution and architecture, then `lib/libfakechroot.so`; without
    /// one, any of udocker's builds in lib/; last, the distribution's (`system`). Vetted as tools.
    public func fakechrootLibrary(
        for target: FakechrootTarget? = nil, system: [String] = ToolLocator.systemFakechrootLibraries
    ) throws(NotFound) -> Tool {
        if let s = environment.hostEnvironment["UDOCKER_FAKECHROOT_SO"], !s.isEmpty {
            let path = s.contains("/") ? s : libraryDirectory + "/" + s
            guard FileInfo.isRegularFile(path) else { throw NotFound(message: "UDOCKER_FAKECHROOT_SO=\(s): \(path) is not a file") }
            return try Self.vetted(Tool(path: path, origin: .setting))
        }
        var own: [String] = []
        if let target {
            var st = stat()
            let inContainer = target.containerDirectory + "/libfakechroot.so"
            if lstat(inContainer, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == getuid(), st.st_mode & 0o022 == 0 {
                own.append(inContainer)
            }
            for arch in target.architectures {
                if let d = target.distribution {
                    if let v = target.version { own.append("\(libraryDirectory)/libfakechroot-\(d)-\(v)-\(arch).so") }
                    own.append("\(libraryDirectory)/libfakechroot-\(d)-\(arch).so")
                }
                own.append("\(libraryDirectory)/libfakechroot-\(arch).so")
            }
            own.append(libraryDirectory + "/libfakechroot.so")
        } else {
            own = ((try? FileManager.default.contentsOfDirectory(atPath: libraryDirectory)) ?? [])
                .filter { $0.hasPrefix("libfakechroot") && $0.hasSuffix(".so") }.sorted()
                .map { libraryDirectory + "/" + $0 }
        }
        if let p = own.first(where: FileInfo.isRegularFile) { return try Self.vetted(Tool(path: p, origin: .binDir)) }
        if let p = system.first(where: FileInfo.isRegularFile) { return try Self.vetted(Tool(path: p, origin: .path)) }
        throw NotFound(
            message:
                "libfakechroot.so not found: run 'udocker install' (udockertools), install the fakechroot package (apt-get install fakechroot), "
                + "or set UDOCKER_FAKECHROOT_SO=/path/to/libfakechroot.so, or put libfakechroot.so in \(libraryDirectory)")
    }

    /// A located tool, once it is safe to run: not setuid/setgid, not writable by group or others,
    /// owned by root or by the user, and (for tools `udocker install` put into the repository)
    /// still the file that was installed (`ToolChecksums`).
    static func vetted(_ tool: Tool) throws(NotFound) -> Tool {
        if let problem = unsafeToolReason(tool.path) ?? ToolChecksums.refusal(path: tool.path) {
            throw NotFound(message: problem)
        }
        return tool
    }

    /// Why the file at `path` (symlinks followed) must not be run as an engine tool, or nil.
    static func unsafeToolReason(_ path: String, euid: uid_t = geteuid()) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let mode = String(st.st_mode & 0o7777, radix: 8)
        if st.st_mode & (S_ISUID | S_ISGID) != 0 {
            return "\(path) is setuid/setgid (mode \(mode)): refusing to run an engine tool with special privileges"
        }
        if st.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            return
                "\(path) is writable by group or others (mode \(mode)): refusing to run it; chmod go-w it or run 'udocker install --force'"
        }
        if st.st_uid != 0 && st.st_uid != euid {
            return "\(path) is owned by uid \(st.st_uid), neither root nor you: refusing to run an engine tool another user can change"
        }
        return nil
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    /// udocker's architecture names for the tool binaries.
    static var udockerArch: String {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: u.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        switch machine {
        case "x86_64", "amd64": return "x86_64"
        case "aarch64", "arm64": return "arm64"
        case "i386", "i486", "i586", "i686": return "x86"
        case let m where m.hasPrefix("armv"): return "armhf"
        default: return machine
        }
    }

    static func kernelAtLeast(_ major: Int, _ minor: Int) -> Bool {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let nums = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard nums.count == 2 else { return true }
        return (nums[0], nums[1]) >= (major, minor)
    }
}

/// A located proot and whether it knows `--kill-on-exit`: what P1/P2 and the PRoot inside R2/R3
/// need to know about it (the R modes ask `ToolLocator`, never the PRoot engine).
public struct PRootBinary: Sendable, Equatable {
    public var path: String
    public var supportsKillOnExit: Bool

    /// Whether the binary knows `--kill-on-exit`: found by scanning it for the option's name
    /// (no need to run `proot --help`), cached per path, size and mtime.
    static func knowsKillOnExit(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        let key = "\(path)|\(st.st_size)|\(st.st_mtim.tv_sec)"
        if let cached = killOnExitCache.withLock({ $0[key] }) { return cached }
        var found = false
        if st.st_size < 64 << 20 { found = FileInfo.contents(of: path, contain: "--kill-on-exit") }
        killOnExitCache.withLock { $0[key] = found }
        return found
    }
    private static let killOnExitCache = Mutex<[String: Bool]>([:])
}

extension ToolLocator {
    /// proot as the engines run it (`proot()`); not found is the engines' `toolNotFound` error.
    public func prootBinary() throws -> PRootBinary {
        let path: String
        do { path = try proot().path } catch { throw EngineError(.toolNotFound, "\(error)", cause: error) }
        return PRootBinary(path: path, supportsKillOnExit: PRootBinary.knowsKillOnExit(path))
    }
}
