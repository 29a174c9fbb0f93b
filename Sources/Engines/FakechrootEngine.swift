import ContainerModel
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// F1-F4: Fakechroot (udocker `engine/fakechroot.py`). The command runs as the host user with
/// libfakechroot preloaded; F1/F2 start it through the container's loader, F3/F4 run the
/// executable directly (its PT_INTERP points into ROOT, see `FakechrootSetup`).
public struct FakechrootEngine: ExecutionEngine {
    public var mode: ExecutionMode
    public static let modes: [ExecutionMode] = [.F1, .F2, .F3, .F4]
    public static func capabilities(of mode: ExecutionMode) -> EngineCapabilities {
        [.nestsUnderPRoot, .passesDescriptors, .volumesKeepHostPath, .recordsOwnMode]
    }
    public var environment: EngineEnvironment
    public var io: StandardIO
    /// Where the distribution's fakechroot package puts the library (the last resort; tests empty it).
    var systemLibraries = ToolLocator.systemFakechrootLibraries

    public init(mode: ExecutionMode, environment: EngineEnvironment, io: StandardIO = .inherit) {
        precondition(Self.modes.contains(mode), "FakechrootEngine runs F1-F4")
        self.mode = mode
        self.environment = environment
        self.io = io
    }

    /// Variables that steer libfakechroot or the loader: never taken from the image's `Env`.
    static func isEngineVariable(_ key: String) -> Bool {
        key.hasPrefix("FAKECHROOT") || key.hasPrefix("LD_")
    }

    /// What the run found before planning.
    public struct Prepared {
        var library: String
        var paths: FakechrootSetup.Paths
    }

    /// Setup state: finish an interrupted conversion, convert a container never set up for this
    /// mode (or moved since), or hand over to the mode the conversion ended in. Then the library,
    /// and the host user in place of any other.
    public func prepare(_ run: inout EngineRun) throws -> Prepared {
        let messages = run.messages
        let container = run.container
        let paths = FakechrootSetup.Paths(directory: container.directory, root: container.root)
        let ownContainer = PathName.normalize(container.root) == PathName.normalize(container.directory + "/ROOT")
        if ownContainer && FakechrootSetup.needsConversion(paths, for: mode) {
            guard let setMode = container.recordMode else {
                throw EngineError(.io, "\(mode.rawValue): the container needs converting, and its mode cannot be recorded")
            }
            do {
                if let ended = try FakechrootSetup.recover(
                    directory: container.directory, root: container.root,
                    log: messages.verbose, setMode: setMode), ended != mode
                {
                    run.handOver = ended
                    return Prepared(library: "", paths: paths)
                }
                if FakechrootSetup.needsConversion(paths, for: mode) {
                    messages.info("converting the container for \(mode.rawValue)")
                    try FakechrootSetup.convert(
                        directory: container.directory, root: container.root, to: mode,
                        log: messages.verbose, setMode: setMode)
                }
            } catch let e as EngineError { throw e } catch {
                throw EngineError(.io, "\(mode.rawValue): cannot prepare the container: \(error)", cause: error)
            }
        }
        let library = try selectLibrary(container)
        let chosen = adjustUser(&run.options, container: container, messages: messages)
        // The host user is our choice, not the user's: its absence from the container is expected.
        run.hiddenWarnings = chosen ? [.userWillBeCreated, .homeNotFound] : [.userWillBeCreated]
        return Prepared(library: library, paths: paths)
    }

    public func launch(_ plan: ExecutionPlan, prepared: Prepared, run: EngineRun) throws -> Launch {
        let command = try commandLine(
            plan: plan, library: prepared.library, paths: prepared.paths,
            hostauth: run.requestedOptions.hostauth, messages: run.messages)
        let (mode, debug) = (mode, environment.debug)
        return Launch(
            path: command.path, arguments: command.arguments, environment: command.environment,
            cwd: command.cwd,
            summary: ["\(mode.rawValue): CMD = \(command.arguments) cwd=\(command.cwd)"]
                + (debug ? ["\(mode.rawValue): ENV = \(command.environment)"] : []))
    }

    // MARK: user

    /// Fakechroot cannot change the user: the command always runs as the host user. Another
    /// `--user` (or image User) is replaced by the host user, with a warning.
    /// Returns true when the user was chosen here (not given by the user or the image).
    @discardableResult
    func adjustUser(_ opts: inout RunOptions, container: ContainerInstance, messages: Messages) -> Bool {
        let uid = getuid()
        var name = String(uid)
        if let pw = getpwuid(uid) { name = String(cString: pw.pointee.pw_name) }
        let meta = opts.nometa ? nil : container.imageConfig?.effectiveConfig.user
        let asked = (opts.user?.isEmpty == false ? opts.user : nil) ?? (meta?.isEmpty == false ? meta : nil)
        guard let asked else { opts.user = name; return true }
        let first = asked.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? asked
        if first == name || UInt32(first) == uid { return false }
        let origin = opts.user?.isEmpty == false ? "--user \(asked)" : "the image's user \(asked)"
        messages.warning(
            "\(mode.rawValue) (Fakechroot) runs as the host user \(name) (uid \(uid)): \(origin) ignored"
                + (first == "root" || first == "0" ? "; running as root is not supported" : ""))
        opts.user = name
        return true
    }

    // MARK: library

    /// udocker `select_fakechroot_so` for this container, then the host's fakechroot package:
    /// `ToolLocator.fakechrootLibrary`, the one lookup `doctor` reports too.
    func selectLibrary(_ container: ContainerInstance) throws -> String {
        let (distro, version) = Self.distribution(root: container.root)
        let target = ToolLocator.FakechrootTarget(
            containerDirectory: container.directory, distribution: distro, version: version,
            architectures: Self.architectureNames(container))
        do {
            return try ToolLocator(environment: environment).fakechrootLibrary(for: target, system: systemLibraries).path
        } catch {
            throw EngineError(.toolNotFound, error.message)
        }
    }

    static func architectureNames(_ container: ContainerInstance) -> [String] {
        let a = container.imageConfig?.architecture ?? ""
        switch a {
        case "amd64", "x86_64", "": return ["x86_64"]
        case "arm64", "aarch64": return ["arm64", "aarch64"]
        case "386", "i386": return ["x86", "i386"]
        case "arm": return ["arm", "armhf"]
        default: return [a]
        }
    }

    /// Distribution name and version from the container (udocker `helper/osinfo.py`): the major
    /// version, except Alpine's major.minor.
    static func distribution(root: String) -> (String?, String?) {
        let r = try? RootDirectory(path: root)
        func fields(_ path: String) -> [String: String] {
            guard let text = r?.text(path) else { return [:] }
            var out: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                out[String(line[..<eq])] = line[line.index(after: eq)...].trimmed(where: { "\"' ".contains($0) })
            }
            return out
        }
        var name: String?, version: String?
        let os = fields("/etc/os-release")
        if let n = os["NAME"] { name = n.split(separator: " ").first.map(String.init); version = os["VERSION_ID"] }
        if name == nil {
            let lsb = fields("/etc/lsb-release")
            name = lsb["DISTRIB_ID"]; version = lsb["DISTRIB_RELEASE"]
        }
        if let v = version {
            let parts = v.split(separator: ".")
            version = name == "Alpine" ? parts.prefix(2).joined(separator: ".") : parts.first.map(String.init)
        }
        return (name, version)
    }

    /// Whether the library understands udocker's extensions (FAKECHROOT_DIR_MAP and friends).
    static func supportsDirectoryMap(_ library: String) -> Bool {
        FileInfo.contents(of: library, contain: "FAKECHROOT_DIR_MAP")
    }

    // MARK: command line

    struct Command {
        var path: String
        var arguments: [String]
        var environment: [String]
        var cwd: String
    }

    /// Library directories for the loader (udocker: ld.so.cache dirs + ld.lib.dirs + essential
    /// dirs first), as host paths.
    static func libraryPath(root: String, paths: FakechrootSetup.Paths) -> [String] {
        var dirs: [String] = []
        for t in [
            "x86_64-linux-gnu", "aarch64-linux-gnu", "i386-linux-gnu", "arm-linux-gnueabihf", "powerpc64le-linux-gnu", "s390x-linux-gnu",
        ] {
            dirs += ["/lib/\(t)", "/usr/lib/\(t)"]
        }
        dirs += ["/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"]
        let r = try? RootDirectory(path: root)
        var confs = ["/etc/ld.so.conf"]
        if let listing = try? FileManager.default.contentsOfDirectory(atPath: root + "/etc/ld.so.conf.d") {
            confs += listing.filter { $0.hasSuffix(".conf") }.sorted().map { "/etc/ld.so.conf.d/" + $0 }
        }
        for c in confs {
            guard let text = r?.text(c) else { continue }
            for line in text.split(separator: "\n") {
                let l = line.trimmed(where: \.isBlank)
                if l.hasPrefix("/") { dirs.append(l) }
            }
        }
        if let saved = FakechrootSetup.read(paths.libDirs) {
            dirs += saved.split(separator: ":").map(String.init)
        }
        var seen = Set<String>()
        var out: [String] = []
        // Entries come from the image (ld.so.conf) and the container directory (ld.lib.dirs): a
        // `..` would name a host directory outside ROOT.
        for d in dirs where d.hasPrefix("/") && !d.split(separator: "/").contains("..") && seen.insert(d).inserted {
            var st = stat()
            if stat(root + d, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { out.append(root + d) }
        }
        return out
    }

    /// How to start the program `hostExe` (an ELF file): directly when it is static or (F3/F4)
    /// patched into ROOT, else through the container's loader.
    func launchVector(hostExe: String, argv0: String, loader: String, libraryPath: String, rootPrefix: String) -> (String, [String]) {
        guard let interp = ELFPatcher.inspect(hostExe).interpreter else { return (hostExe, [argv0]) }
        if (mode == .F3 || mode == .F4) && interp.hasPrefix(rootPrefix) { return (hostExe, [argv0]) }
        var argv = [loader, "--library-path", libraryPath]
        if Self.loaderSupportsArgv0(loader) { argv += ["--argv0", argv0] }
        argv.append(hostExe)
        return (loader, argv)
    }

    static func loaderSupportsArgv0(_ loader: String) -> Bool {
        FileInfo.contents(of: loader, contain: "--argv0")
    }

    func commandLine(
        plan: ExecutionPlan, library: String, paths: FakechrootSetup.Paths, hostauth: Bool,
        messages: Messages
    ) throws -> Command {
        let root = paths.root
        let cr = try RootDirectory(path: root)
        let supportsMap = Self.supportsDirectoryMap(library)

        // Volumes → FAKECHROOT_EXCLUDE_PATH (identity) and FAKECHROOT_DIR_MAP (the others).
        let expandSetting = environment.hostEnvironment["UDOCKER_FAKECHROOT_EXPAND_SYMLINKS"]?.lowercased()
        let expandConfigured: Bool? = expandSetting == "true" ? true : (expandSetting == "false" ? false : nil)
        var exclude: [String] = []
        var maps: [(String, String)] = []
        var recommendExpand = false
        for m in plan.mounts {
            let isAuth = plan.temporaryFiles.contains(m.source)
            let real: String = {
                guard let r = realpath(m.source, nil) else { return m.source }
                defer { free(r) }
                return String(cString: r)
            }()
            if m.source == m.target && (expandConfigured == false || m.isSysdir || !m.isDirectory || !supportsMap) {
                exclude.append(m.source)
                continue
            }
            if supportsMap {
                maps.append((m.target, real))
                if m.source != real || m.isDirectory { recommendExpand = true }
                continue
            }
            // Debian's libfakechroot has no FAKECHROOT_DIR_MAP.
            if isAuth {
                messages.verbose("\(mode.rawValue): \(library) cannot map \(m.target); the container's own file is used")
                continue
            }
            throw EngineError.invalid(
                "volume \(m.source):\(m.target): \(library) does not support FAKECHROOT_DIR_MAP, "
                    + "so only volumes at the same path work (-v \(m.source)); "
                    + "set UDOCKER_FAKECHROOT_SO to udocker's libfakechroot for mapped volumes")
        }
        if !supportsMap && hostauth && plan.mounts.contains(where: { plan.temporaryFiles.contains($0.source) }) {
            // --hostauth: the copies are the host files, which are at the same paths.
            exclude += ["/etc/passwd", "/etc/group"]
        }
        // Mountpoints for user volumes (cosmetic for `ls`; best effort, never following symlinks).
        for m in plan.mounts where !m.isSysdir && !plan.temporaryFiles.contains(m.source) {
            if let r = try? cr.resolve(m.target), !r.exists, !r.inVolume { try? cr.makeMountpoint(r.path, directory: m.isDirectory) }
        }

        // Executable: host path; scripts get their interpreter (prefixed with ROOT).
        let bindings = plan.mounts.map { RootDirectory.Volume(host: $0.source, container: $0.target) }
        func host(_ c: String) throws -> String {
            if let r = try? cr.resolve(c, volumes: bindings), r.exists { return r.hostPath }
            if let h = FakechrootSetup.hostPath(c, root: root) { return h }
            throw EngineError.invalid("command not found or has no execute bit set: \(c)")
        }
        let exeHost = try host(plan.executable)
        let argv0 = plan.arguments[0]
        var rest = Array(plan.arguments.dropFirst())
        var program = exeHost
        var programArgv0 = argv0
        if !Self.isELF(exeHost) {
            var interpreter = "/bin/sh"
            var interpArg: String?
            if let line = Self.shebang(exeHost) {
                let parts = line.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                if let first = parts.first { interpreter = String(first) }
                if parts.count > 1 { interpArg = parts[1].trimmed(where: \.isBlank) }
            }
            program = try host(interpreter)
            programArgv0 = interpreter
            rest = (interpArg.map { [$0] } ?? []) + [plan.executable] + rest
        }
        // No loader (an image of static executables): they are started directly, as launchVector does.
        let loaderContainer = FakechrootSetup.read(paths.ldPath) ?? FakechrootSetup.findLoader(root: root)
        let loader = loaderContainer.flatMap { FakechrootSetup.hostPath($0, root: root) } ?? ""
        if loader.isEmpty && ELFPatcher.inspect(program).interpreter != nil {
            throw EngineError(.io, "\(mode.rawValue): cannot find the container's dynamic loader (ld.so)")
        }
        // The plan's LD_LIBRARY_PATH entries that are volumes at their host path (e.g. the
        // `--nvidia` directory) come first; the others name container directories, listed below.
        let planLibPath =
            plan.environmentValue("LD_LIBRARY_PATH")?.split(separator: ":").map(String.init).filter { d in
                !plan.imageEnvironmentKeys.contains("LD_LIBRARY_PATH")
                    && plan.mounts.contains { $0.source == $0.target && $0.isDirectory && PathName.isUnder(d, $0.target) }
            } ?? []
        let libPath = (planLibPath + Self.libraryPath(root: root, paths: paths)).joined(separator: ":")
        var (path, argv) = launchVector(
            hostExe: program, argv0: programArgv0, loader: loader, libraryPath: libPath,
            rootPrefix: root + "/")
        argv += rest

        // Working directory.
        let cwdHost: String
        if let r = try? cr.resolve(plan.cwd, volumes: bindings), r.exists, r.isDirectory {
            cwdHost = r.hostPath
        } else if let h = FakechrootSetup.hostPath(plan.cwd, root: root) {
            cwdHost = h
        } else {
            throw EngineError.invalid("invalid working directory: \(plan.cwd)")
        }

        // Environment (udocker `_fakechroot_env_set`).
        var env = EnvironmentList()
        for e in plan.environment {
            guard let eq = e.firstIndex(of: "=") else { continue }
            let k = String(e[..<eq])
            if Self.isEngineVariable(k) && plan.imageEnvironmentKeys.contains(k) {
                messages.warning("the image sets \(k), which would steer Fakechroot itself: ignored")
                continue
            }
            if k == "LD_PRELOAD" || k == "LD_LIBRARY_PATH" || k == "LD_LIBRARY_REAL" { continue }
            env.set(k, String(e[e.index(after: eq)...]))
        }
        env.set("PWD", plan.cwd)
        env.set("FAKECHROOT_BASE", root)
        env.set("LD_PRELOAD", library)
        env.set("FAKECHROOT_EXPAND_SYMLINKS", String(expandConfigured ?? recommendExpand))
        if let libc = Self.containerLibc(root: root) { env.set("FAKECHROOT_LIBC", libc) }
        if !plan.mounts.contains(where: { $0.target == "/tmp" }) { env.set("FAKECHROOT_AF_UNIX_PATH", environment.tmpDir) }
        if !exclude.isEmpty { env.set("FAKECHROOT_EXCLUDE_PATH", exclude.joined(separator: ":")) }
        if !maps.isEmpty {
            env.set("FAKECHROOT_DIR_MAP", maps.sorted { $0.0 > $1.0 }.map { "\($0.1)!\($0.0)" }.joined(separator: ":"))
        }
        if environment.debug { env.set("FAKECHROOT_DEBUG", "true"); env.set("LD_DEBUG", "libs:files") }
        switch mode {
        case .F1:
            env.set("FAKECHROOT_ELFLOADER", loader)
            env.set("LD_LIBRARY_PATH", libPath)
        case .F2:
            env.set("FAKECHROOT_ELFLOADER", loader)
            env.set("FAKECHROOT_LIBRARY_ORIG", libPath)
            env.set("LD_LIBRARY_REAL", libPath)
            env.set("LD_LIBRARY_PATH", libPath)
        default:
            env.set("FAKECHROOT_LIBRARY_ORIG", libPath)
            env.set("LD_LIBRARY_REAL", libPath)
            env.set("LD_LIBRARY_PATH", libPath)
        }
        if mode == .F4 {
            // Needs udocker's patchelf (with --set-root-prefix); without it F4 behaves as F3.
            if let pe = try? ToolLocator(environment: environment).patchelf(), pe.origin == .binDir {
                env.set("FAKECHROOT_PATCH_PATCHELF", pe.path)
            }
            env.set("FAKECHROOT_PATCH_ELFLOADER", loader)
            if let t = FakechrootSetup.read(paths.patchTime) { env.set("FAKECHROOT_PATCH_LAST_TIME", t) }
        }
        return Command(path: path, arguments: argv, environment: env.entries, cwd: cwdHost)
    }

    static func isELF(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return ELFFile.hasMagic(fd: fd)
    }

    /// The shebang line without "#!", or nil.
    static func shebang(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var b = [UInt8](repeating: 0, count: 256)
        let n = read(fd, &b, b.count)
        guard n > 2, b[0] == UInt8(ascii: "#"), b[1] == UInt8(ascii: "!") else { return nil }
        let line = b[2..<n].prefix(while: { $0 != 0x0a })
        let s = String(decoding: line, as: UTF8.self).trimmed(where: \.isBlank)
        return s.isEmpty ? nil : s
    }

    /// udocker `FAKECHROOT_LIBC`: the container's libc (host path).
    static func containerLibc(root: String) -> String? {
        for d in [
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
            "/lib64", "/usr/lib64", "/lib", "/usr/lib",
        ] {
            for n in ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"] {
                if let h = FakechrootSetup.hostPath(d + "/" + n, root: root), FileInfo.isRegularFile(h) { return h }
            }
        }
        return nil
    }
}
