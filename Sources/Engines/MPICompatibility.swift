import FoundationEssentials
import Store
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The MPI library a program is linked against (read from its ELF `DT_NEEDED` and the library's).
struct MPILibrary: Equatable, Sendable {
    enum Vendor: String, Sendable { case openMPI = "Open MPI", mpich = "MPICH" }
    var vendor: Vendor
    /// `libmpi.so.40`, `libmpich.so.12`.
    var soname: String
    /// The real file name, e.g. `libmpi.so.40.30.4` (carries the release series).
    var fileName: String
    /// The library links libpmix (it can join a PMIx launch such as `srun --mpi=pmix`).
    var usesPMIx: Bool

    var description: String { "\(vendor.rawValue) (\(fileName))" }

    /// The first two numbers after the soname's: Open MPI 4.0 = 40.20.x, 4.1 = 40.30.x.
    var series: String {
        let parts = fileName.split(separator: ".").drop { $0 != "so" }.dropFirst()
        return parts.prefix(2).joined(separator: ".")
    }

    static func isMPISoname(_ name: String) -> Bool {
        name.hasPrefix("libmpi.so.") || name.hasPrefix("libmpich.so.")
    }

    /// Classifies the library file at `path` (already resolved; `soname` as the program asks).
    static func inspect(soname: String, hostPath path: String) -> MPILibrary? {
        guard let needed = ELFFile.neededLibraries(path: path) else { return nil }
        let openMPI = needed.contains { $0.hasPrefix("libopen-pal.so") || $0.hasPrefix("libopen-rte.so") }
        let vendor: Vendor
        if openMPI {
            vendor = .openMPI
        } else if soname.hasPrefix("libmpich.so.") || soname == "libmpi.so.12" {
            vendor = .mpich
        } else {
            return nil
        }
        let real = PathName.basename(
            realpath(path, nil).map { p in
                defer { free(p) }; return String(cString: p)
            } ?? path)
        return MPILibrary(vendor: vendor, soname: soname, fileName: real, usesPMIx: needed.contains { $0.hasPrefix("libpmix.so") })
    }

    /// Library directories searched, after LD_LIBRARY_PATH and the program's RUNPATH.
    static let systemDirectories = [
        "/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64",
        "/usr/lib", "/lib",
    ]
}

/// How this task was started, as far as MPI is concerned (from the host environment).
enum MPILauncher: Equatable, Sendable {
    /// Open MPI's mpirun (`OMPI_COMM_WORLD_SIZE`).
    case openMPI
    /// A PMIx server without Open MPI's runtime: `srun --mpi=pmix`, prterun.
    case pmix
    /// PMI-1/2: MPICH's Hydra (`mpiexec`) or `srun --mpi=pmi2`.
    case pmi
    /// `srun -nN` with no MPI plugin: N tasks that cannot find each other.
    case slurmWithoutMPI(tasks: Int)

    static func detect(_ env: [String: String]) -> MPILauncher? {
        if env["OMPI_COMM_WORLD_SIZE"] != nil { return .openMPI }
        if env["PMIX_RANK"] != nil { return .pmix }
        if env["PMI_RANK"] != nil || env["PMI_FD"] != nil || env["PMI_PORT"] != nil { return .pmi }
        if env["SLURM_STEP_ID"] != nil, let n = Int(env["SLURM_STEP_NUM_TASKS"] ?? env["SLURM_NTASKS"] ?? ""), n > 1,
            (env["SLURM_MPI_TYPE"] ?? "none") == "none"
        {
            return .slurmWithoutMPI(tasks: n)
        }
        return nil
    }

    var description: String {
        switch self {
        case .openMPI: return "Open MPI's mpirun"
        case .pmix: return "a PMIx launcher (srun --mpi=pmix or prterun)"
        case .pmi: return "a PMI launcher (MPICH's mpiexec or srun --mpi=pmi2)"
        case .slurmWithoutMPI(let n): return "srun with \(n) tasks and no MPI plugin (--mpi=none)"
        }
    }
}

/// The pre-exec check: an MPI program started by an MPI launcher must speak the launcher's
/// protocol, or each rank silently runs as a one-rank job. Returns the one-line refusal, or nil.
enum MPICompatibility {
    static func problem(program: String, library lib: MPILibrary, launcher: MPILauncher, host: MPILibrary?) -> String? {
        let prog = PathName.basename(program)
        let singletons = "its ranks would run as separate one-rank jobs"
        switch launcher {
        case .openMPI:
            guard lib.vendor == .openMPI else {
                return "MPI mismatch: \(prog) uses \(lib.description) but was started by \(launcher.description)"
                    + (host.map { " (\($0.description))" } ?? "") + "; \(singletons)"
            }
            if let host, host.vendor == .openMPI, host.soname != lib.soname || host.series != lib.series {
                return "MPI mismatch: \(prog) uses \(lib.description), the host's mpirun is \(host.description); "
                    + "use the same Open MPI release in the container, or --mpi=host"
            }
        case .pmix:
            guard lib.vendor == .openMPI || lib.usesPMIx else {
                return "MPI mismatch: \(prog) uses \(lib.description), which has no PMIx, but was started by "
                    + "\(launcher.description); \(singletons)"
            }
        case .pmi:
            guard lib.vendor == .mpich else {
                return "MPI mismatch: \(prog) uses \(lib.description) but was started by \(launcher.description)"
                    + (host.map { " (\($0.description))" } ?? "") + "; \(singletons)"
            }
        case .slurmWithoutMPI:
            return "MPI job without MPI: \(prog) uses \(lib.description) but was started by \(launcher.description); "
                + "\(singletons): use srun --mpi=pmix"
        }
        return nil
    }

    /// The host's MPI library for a launcher (LD_LIBRARY_PATH, then the system directories),
    /// with the path it was found at.
    static func hostLibrary(for launcher: MPILauncher?, environment env: [String: String]) -> (MPILibrary, String)? {
        let names: [String]
        switch launcher {
        case .openMPI?: names = ["libmpi.so.40", "libmpi.so.20"]
        case .pmi?: names = ["libmpich.so.12", "libmpi.so.12"]
        case nil: names = ["libmpi.so.40", "libmpi.so.20", "libmpich.so.12", "libmpi.so.12"]
        default: return nil
        }
        let dirs =
            (env["LD_LIBRARY_PATH"] ?? "").split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
            + MPILibrary.systemDirectories
        for dir in dirs {
            for name in names {
                let p = dir + "/" + name
                if access(p, R_OK) == 0, let lib = MPILibrary.inspect(soname: name, hostPath: p) { return (lib, p) }
            }
        }
        return nil
    }
}

extension ELFFile {
    static let DT_NEEDED: Int64 = 1

    /// `DT_NEEDED` names of the ELF file at `path`; nil when it cannot be read or is not ELF.
    static func neededLibraries(path: String) -> [String]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let elf = try? ELFFile(fd: fd) else { return nil }
        let dyn = elf.dynamicEntries
        guard let strtab = dyn.first(where: { $0.tag == Self.DT_STRTAB })?.value else { return [] }
        return dyn.filter { $0.tag == Self.DT_NEEDED }.prefix(256).compactMap { e in
            elf.fileOffset(ofVirtualAddress: strtab &+ e.value).flatMap { elf.readCString($0, limit: 256) }
        }
    }
}

extension PlanBuilder {
    /// Before exec, when an MPI launcher started this task and the program links an MPI library:
    /// refuse a launcher/library mismatch (`--mpi=none` skips the check). With `--mpi=host`, the
    /// binds that put the host's MPI libraries where the container's loader finds its own.
    /// Sets `mpiParameters` (`openMPIHostParameters`) for a rank that passes.
    mutating func checkMPI(executable: String, bindings: [RootDirectory.Volume]) throws -> [ExecutionPlan.Mount] {
        guard options.mpi != "none" else { return [] }
        let launcher = MPILauncher.detect(env.hostEnvironment)
        guard launcher != nil || options.mpi == "host",
            let program = try? rootFS.resolve(executable, volumes: bindings), program.isRegularFile,
            let needed = ELFFile.neededLibraries(path: program.hostPath),
            let soname = needed.first(where: MPILibrary.isMPISoname)
        else {
            if options.mpi == "host" {
                throw EngineError.invalid("--mpi=host: \(PathName.basename(executable)) is not linked with an MPI library")
            }
            return []
        }
        guard let (lib, libPath) = containerLibrary(soname, program: program.hostPath, bindings: bindings) else {
            if options.mpi == "host" {
                throw EngineError.invalid("--mpi=host: the container has no \(soname) for \(PathName.basename(executable))")
            }
            return []
        }
        if capabilities.contains(.identityThroughOuterNamespace), launcher == .openMPI || launcher == .pmix,
            let why = RuncIdentity.unavailableReason(environment: env.hostEnvironment)
        {
            throw EngineError.invalid(
                "\(mode.rawValue) cannot run a rank of a PMIx job here: the launcher's PMIx server accepts only your uid, "
                    + "and \(mode.rawValue) can run as you only in an outer user namespace: \(why); use N1, P1 or F3 (setup --execmode)")
        }
        if !capabilities.contains(.passesDescriptors), jobDescriptor != nil {
            throw EngineError.invalid(
                "\(mode.rawValue) cannot run a rank of this PMI job: the launcher hands each rank a socket (PMI_FD) that the "
                    + "runtime does not pass on; use N1, P1 or F3 (setup --execmode), or mpiexec -pmi-port")
        }
        let host = MPICompatibility.hostLibrary(for: options.mpi == "host" ? nil : launcher, environment: env.hostEnvironment)
        if options.mpi == "host" {
            let mounts = try hostMPIMounts(container: lib, host: host, program: program.hostPath, bindings: bindings)
            mpiParameters = openMPIHostParameters(library: lib, containerPath: libPath, bindings: bindings)
            return mounts
        }
        if let launcher, let problem = MPICompatibility.problem(program: executable, library: lib, launcher: launcher, host: host?.0) {
            throw EngineError.invalid(problem)
        }
        mpiParameters = openMPIHostParameters(library: lib, containerPath: libPath, bindings: bindings)
        return []
    }

    /// Where the container's loader finds `soname`: LD_LIBRARY_PATH, the program's RUNPATH, the
    /// system directories (resolved inside the root). Returns the library and its container path.
    func containerLibrary(_ soname: String, program: String, bindings: [RootDirectory.Volume]) -> (MPILibrary, String)? {
        containerLibraryFile(soname, program: program, bindings: bindings) { MPILibrary.inspect(soname: soname, hostPath: $0) }
    }

    /// The first file named `soname` in the loader's directories for which `accept` (given its
    /// host path) gives a value; with that value its container path.
    func containerLibraryFile<T>(
        _ soname: String, program: String, bindings: [RootDirectory.Volume],
        accept: (String) -> T?
    ) -> (T, String)? {
        var dirs = (containerEnv["LD_LIBRARY_PATH"] ?? "").split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
        if let rp = ELFFile.runpathString(path: program) {
            dirs += rp.split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
        }
        for dir in dirs + MPILibrary.systemDirectories {
            guard let r = try? rootFS.resolve(dir + "/" + soname, volumes: bindings), r.isRegularFile, !r.inVolume,
                let value = accept(r.hostPath)
            else { continue }
            return (value, r.path)
        }
        return nil
    }

    /// `--mpi=host`: the host's MPI libraries (the library and the MPI's own libraries it needs)
    /// bound read-only over the container's files of the same soname, and Open MPI's plugin
    /// directory read-only at its host path. The two must be the same MPI ABI (vendor and soname).
    func hostMPIMounts(
        container lib: MPILibrary, host: (MPILibrary, String)?, program: String,
        bindings: [RootDirectory.Volume]
    ) throws -> [ExecutionPlan.Mount] {
        if capabilities.contains(.volumesKeepHostPath) {
            // Fakechroot's loader opens libraries straight from ROOT (ld.so's own opens are not
            // translated), so a bind over a library file would silently not be used.
            throw EngineError.invalid(
                "--mpi=host is not supported by \(mode.rawValue): its loader reads libraries from the "
                    + "container's own files; use N1 or P1")
        }
        guard let (hostLib, hostPath) = host else {
            throw EngineError.invalid("--mpi=host: no MPI library found on the host (LD_LIBRARY_PATH, system directories)")
        }
        guard hostLib.vendor == lib.vendor, hostLib.soname == lib.soname else {
            throw EngineError.invalid("--mpi=host: the container's \(lib.description) and the host's \(hostLib.description) differ in ABI")
        }
        let hostDir = PathName.parent(hostPath)
        let own = (ELFFile.neededLibraries(path: hostPath) ?? []).filter {
            $0.hasPrefix("libopen-") || $0.hasPrefix("libmpi") || $0.hasPrefix("libmpich")
        }
        var mounts: [ExecutionPlan.Mount] = []
        for soname in [lib.soname] + own {
            let hostFile = hostDir + "/" + soname
            guard
                let real = realpath(hostFile, nil).map({ p -> String in
                    defer { free(p) }; return String(cString: p)
                }),
                let (_, target) = containerLibraryFile(soname, program: program, bindings: bindings, accept: { _ in true })
            else {
                throw EngineError.invalid("--mpi=host: \(soname) is missing on the host or in the container")
            }
            mounts.append(.hostFile(real, at: target, isDirectory: false))
        }
        if lib.vendor == .openMPI {
            let plugins = hostDir + "/openmpi/lib"
            var st = stat()
            if stat(plugins, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
                mounts.append(.hostFile(plugins, at: plugins, isDirectory: true))
            }
        }
        return mounts
    }
}

extension ELFFile {
    static func runpathString(path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return (try? ELFFile(fd: fd))?.runpath?.value
    }
}
