import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Open MPI's MCA parameter files (`openmpi-mca-params.conf` in its sysconfdir, then the user's
/// `~/.openmpi/mca-params.conf`, which wins): a bare rank reads the host's; a rank in a container
/// reads the container's. Debian's `libopenmpi3` does not bring the site file (it is in
/// `openmpi-common`, which only `openmpi-bin` pulls in), so a runtime image without it opens every
/// component the host's administrators turned off (Debian's file: `btl = ^uct,openib,ofi`,
/// `mtl = ^ofi`, `pml = ^ucx`, ...). Measured (docs/hpc.md, issue 25): `btl/ofi` then costs every
/// rank ~1.5 s of CPU in `MPI_Init` (libfabric's `fi_getinfo` reads `/proc/kallsyms` twice) and
/// sleeps 1 s in `MPI_Finalize` (`mca_btl_ofi_component_close`: `sleep(1)`).
enum OpenMPIParameters {
    /// The site file's name in a sysconfdir.
    static let siteFileName = "openmpi-mca-params.conf"

    /// Where an Open MPI installation whose `libmpi` is in `libraryDirectory` keeps its site file:
    /// Debian's packages use `/etc/openmpi`; a build under a prefix uses `<prefix>/etc`.
    static func siteFiles(libraryDirectory dir: String) -> [String] {
        var files = ["/etc/openmpi/" + siteFileName]
        let parts = PathName.components(PathName.normalize(dir))
        if let lib = parts.lastIndex(where: { $0.hasPrefix("lib") }), lib > 0 {
            let prefix = "/" + parts[..<lib].joined(separator: "/")
            if prefix != "/usr" { files.append(prefix + "/etc/" + siteFileName) }
        }
        return files
    }

    /// `key = value` lines of an MCA parameter file, in order (Open MPI's keyval syntax: `#` and
    /// `//` line comments, `/* */` block comments; the value is the rest of the line, trimmed).
    /// Lines that are not a plain assignment (`-mca`/`-x` forms, errors) are skipped.
    static func parse(_ text: String) -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        var inComment = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true).prefix(10000) {
            var line = Substring(raw)
            if inComment {
                guard let end = line.firstRange(of: "*/") else { continue }
                line = line[end.upperBound...]
                inComment = false
            }
            let trimmed = line.trimmed(where: \.isBlank)
            if trimmed.hasPrefix("#") || trimmed.hasPrefix("//") { continue }
            if trimmed.hasPrefix("/*") {
                if !trimmed.dropFirst(2).contains("*/") { inComment = true }
                continue
            }
            guard let eq = trimmed.firstIndex(of: "=") else { continue }
            let key = trimmed[..<eq].trimmed(where: \.isBlank)
            let value = trimmed[trimmed.index(after: eq)...].trimmed(where: \.isBlank)
            guard !key.isEmpty, !value.isEmpty, key.utf8.count <= 200, value.utf8.count <= 4096,
                key.unicodeScalars.allSatisfy({
                    $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_")
                })
            else { continue }
            out.append((key, value))
        }
        return out
    }

    /// The values a bare rank of the host's Open MPI reads from files: the site file of the
    /// installation in `libraryDirectory` (`OPAL_SYSCONFDIR` overrides it, as in Open MPI), then
    /// the user's file over it. Later values win.
    static func hostValues(libraryDirectory: String?, home: String?, environment env: [String: String]) -> [(key: String, value: String)] {
        var files: [String]
        if let dir = env["OPAL_SYSCONFDIR"], dir.hasPrefix("/") {
            files = [dir + "/" + siteFileName]
        } else {
            files = siteFiles(libraryDirectory: libraryDirectory ?? "/usr/lib")
        }
        if let home, home.hasPrefix("/") { files.append(home + "/.openmpi/mca-params.conf") }
        var values: [(key: String, value: String)] = []
        for file in files {
            guard let text = readSmall(file) else { continue }
            for (k, v) in parse(text) {
                values.removeAll { $0.key == k }
                values.append((k, v))
            }
        }
        return values
    }

    /// A regular file of at most 256 KiB, as text.
    static func readSmall(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size <= 256 * 1024 else { return nil }
        return AtomicFile.readString(path)
    }
}

extension PlanBuilder {
    /// For an Open MPI rank (Open MPI's mpirun or a PMIx launcher) whose container has no MCA
    /// site file of its own: the host's MCA file values as `OMPI_MCA_<key>`, so the rank opens the
    /// components a bare rank on this host opens (the image's file, when it has one, is its
    /// author's choice and stays in force). `OMPI_MCA_mca_base_param_files` (the user naming the
    /// files) turns this off.
    func openMPIHostParameters(library: MPILibrary, containerPath: String, bindings: [RootDirectory.Volume]) -> [(String, String)] {
        guard library.vendor == .openMPI, env.hostEnvironment["OMPI_MCA_mca_base_param_files"] == nil else { return [] }
        switch MPILauncher.detect(env.hostEnvironment) {
        case .openMPI?, .pmix?: break
        default: return []
        }
        let own = OpenMPIParameters.siteFiles(libraryDirectory: PathName.parent(containerPath))
        if own.contains(where: { (try? rootFS.resolve($0, volumes: bindings))?.exists == true }) { return [] }
        let hostLib = MPICompatibility.hostLibrary(for: .openMPI, environment: env.hostEnvironment)
        return OpenMPIParameters.hostValues(
            libraryDirectory: hostLib.map { PathName.parent($0.1) }, home: host.home, environment: env.hostEnvironment
        ).map { ("OMPI_MCA_" + $0.key, $0.value) }
    }
}
