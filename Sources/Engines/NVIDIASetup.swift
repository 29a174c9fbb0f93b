import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// `setup --nvidia [--force]`: udocker's copy-in of the host driver into the container, kept
/// for compatibility (`run --nvidia` binds the current driver instead and needs no re-setup
/// after a driver upgrade). Unlike udocker 1.3.17 it takes the files `run --nvidia` would (the
/// running driver's version only, the full compute + utility list), refuses when the pre-flight
/// fails, writes only beneath ROOT (through the in-root resolver, never following a symlink
/// out), and fails with an error instead of exiting 0.
public enum NVIDIASetup {
    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Libraries go to the first of these that exists in the container (udocker's rule).
    static let libraryDirectories = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64"]
    /// Marker file in the container directory (udocker's `nvidia`).
    public static let marker = "nvidia"

    /// Copies the driver; returns one line per file written. `log` gets the progress lines.
    public static func install(
        containerDirectory: String, root: String, environment: [String: String],
        udockerDir: String?, force: Bool
    ) throws -> [String] {
        let driver = NVIDIADriver(root: NVIDIADriver.hostRoot(environment: environment))
        var capabilities: Set<String>, list: NVIDIAFileList
        do {
            capabilities = try NVIDIAFileList.capabilities(from: environment["NVIDIA_DRIVER_CAPABILITIES"])
            list = try NVIDIAFileList.load(environment: environment, udockerDir: udockerDir)
        } catch let e as NVIDIAFileList.ParseError { throw Failure(description: e.description) }
        // What udocker copies, whatever the capabilities (a container moved from udocker keeps it).
        list.items += NVIDIAFileList.udockerSetup
        capabilities.insert(NVIDIAFileList.setupCapability)
        let report = NVIDIAPreflight.run(
            driver: driver, container: root, imageEnvironment: [:], userEnvironment: [:],
            capabilities: capabilities, list: list)
        if let e = report.findings.first(where: { $0.level == .error }) { throw Failure(description: e.message) }
        let dir = try RootDirectory(path: root)
        guard let libDir = libraryDirectories.first(where: { dir.isDirectory($0) }) else {
            throw Failure(description: "the container has none of \(libraryDirectories.joined(separator: ", ")) for the driver libraries")
        }
        var plan: [(dir: String, name: String, source: String?, link: String?, mode: mode_t)] = []
        for f in report.libraries {
            plan.append((libDir, f.name, f.host, nil, 0o755))
            for l in f.links where l != f.name { plan.append((libDir, l, nil, f.name, 0)) }
        }
        for f in driver.binaries(capabilities: capabilities, list: list) { plan.append(("/usr/bin", f.name, f.host, nil, 0o755)) }
        for f in driver.otherFiles(capabilities: capabilities, list: list) {
            plan.append((PathName.normalize(f.container + "/.."), PathName.basename(f.container), f.host, nil, 0o644))
        }
        let resolver = try dir.makeResolver()
        defer { resolver.close() }
        func directory(_ path: String) throws -> Int32 {
            guard let (fd, _) = try resolver.directory(RootResolver.components(Array(path.utf8)), create: true) else {
                throw Failure(description: "\(path) is not a directory in the container")
            }
            return fd
        }
        if !force {
            for p in plan {
                var st = stat()
                // An empty file is the mount point a `run --nvidia` left (the ICD), not a copy.
                if fstatat(try directory(p.dir), p.name, &st, AT_SYMLINK_NOFOLLOW) == 0,
                    !(st.st_mode & S_IFMT == S_IFREG && st.st_size == 0)
                {
                    throw Failure(description: "nvidia installation already exists (\(p.dir)/\(p.name)); use --force to replace it")
                }
            }
        }
        var written: [String] = []
        for p in plan {
            let dfd = try directory(p.dir)
            let path = "\(p.dir)/\(p.name)"
            if unlinkat(dfd, p.name, 0) != 0 && errno != ENOENT {
                throw Failure(description: "cannot replace \(path): \(String(cString: strerror(errno)))")
            }
            if let link = p.link {
                guard symlinkat(link, dfd, p.name) == 0 else {
                    throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))")
                }
            } else if let source = p.source {
                try copy(source, into: dfd, name: p.name, mode: p.mode, shown: path)
            }
            written.append(path)
        }
        try AtomicFile.write("\(report.version ?? "")\n", to: containerDirectory + "/" + marker)
        return written
    }

    static func copy(_ source: String, into dfd: Int32, name: String, mode: mode_t, shown: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw Failure(description: "cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard output >= 0 else { throw Failure(description: "cannot create \(shown): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(input, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Failure(description: "cannot read \(source): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            var off = 0
            while off < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + off, n - off) }
                guard w > 0 else { throw Failure(description: "cannot write \(shown): \(String(cString: strerror(errno)))") }
                off += w
            }
        }
        fchmod(output, mode)
    }

    /// The version of the driver copied in: the file `libcuda.so.1` names in the container's
    /// library directory (`libcuda.so.<version>`, also for a container set up by udocker), else
    /// the marker's content (ours; udocker's marker is empty). nil when neither tells.
    public static func copiedVersion(containerDirectory: String, root: String) -> String? {
        if let dir = try? RootDirectory(path: root) {
            for d in libraryDirectories {
                guard let r = try? dir.resolve(d + "/libcuda.so.1"), r.exists, r.isRegularFile, !r.inVolume else { continue }
                let name = PathName.basename(r.path)
                if name.hasPrefix("libcuda.so."), name != "libcuda.so.1" { return String(name.dropFirst("libcuda.so.".count)) }
            }
        }
        let marker = (try? RootDirectory(path: containerDirectory).readFile("/" + marker, limit: 4096))
            .map { String(decoding: $0, as: UTF8.self).trimmed(where: \.isBlank) }
        return marker.flatMap { $0.isEmpty ? nil : $0 }
    }

    public static func isInstalled(containerDirectory: String) -> Bool {
        FileInfo.exists(containerDirectory + "/" + marker)
    }
}
