import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The host's NVIDIA driver as seen beneath a host root (`UDOCKER_NVIDIA_ROOT`, default `/`):
/// every lookup — `etc/ld.so.cache`, the libraries it names, `usr/bin/nvidia-*`, `dev/nvidia*`,
/// `proc/driver/nvidia`, `lib/firmware/nvidia` — is resolved in-root, so tests point it at a
/// fake driver tree.
public struct NVIDIADriver: Sendable {
    /// A file to provide: `host` is its host path, `name` its file name in the container.
    public struct File: Sendable, Equatable {
        public var host: String
        public var name: String
        /// Other names (sonames) that link to it (`libcuda.so.1` → `libcuda.so.550.54.15`).
        public var links: [String] = []
    }

    /// A device node: `host` path, container path under /dev, major:minor.
    public typealias Device = ExecutionPlan.Device

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// Host root, no trailing slash ("" for /).
    public let root: String

    public init(root: String) {
        let r = PathName.normalize(root.isEmpty ? "/" : root)
        self.root = r == "/" ? "" : r
    }

    /// `UDOCKER_NVIDIA_ROOT` or `/`.
    public static func hostRoot(environment: [String: String]) -> String {
        environment["UDOCKER_NVIDIA_ROOT"].flatMap { $0.isEmpty ? nil : $0 } ?? "/"
    }

    var resolver: RootDirectory? { try? RootDirectory(path: root.isEmpty ? "/" : root) }

    /// Host path of `path` (absolute, as the host sees it) resolved beneath the root.
    func resolve(_ path: String) -> (canonical: String, host: String)? {
        guard let r = try? resolver?.resolve(path), r.exists else { return nil }
        return (r.path, root + r.path)
    }

    /// The kernel module's version from `proc/driver/nvidia/version`
    /// (`NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 …`).
    public func kernelModuleVersion() -> String? {
        guard let data = resolver?.contents("/proc/driver/nvidia/version") else { return nil }
        let text = String(decoding: data.prefix(4096), as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("NVRM version:") }) else { return nil }
        let words = line.split(separator: " ").map(String.init)
        let after = words.firstIndex(of: "Module").map { words.index(after: $0) } ?? words.startIndex
        return words[after...].first { w in
            let parts = w.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count >= 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
        }
    }

    /// The ld.so cache of the host root.
    public func cache() throws -> LDCache {
        do { return try LDCache.load(root: root.isEmpty ? "/" : root) } catch {
            throw Failure("cannot read \(root)/etc/ld.so.cache: \(error)")
        }
    }

    /// The file a soname resolves to through the cache: its host path and file name.
    public func library(_ soname: String, cache: LDCache) -> (host: String, name: String)? {
        guard let e = cache.lookup(soname), let r = resolve(e.path) else { return nil }
        return (r.host, PathName.basename(r.canonical))
    }

    /// The libraries of the selected capabilities whose file name ends in `.so.<version>`
    /// (libnvidia-container's rule: a stale `libcuda.so.535.x` is never taken), one entry per
    /// file with its sonames as links. Only ELF files of this machine's ABI.
    public func libraries(version: String, capabilities: Set<String>, list: NVIDIAFileList, cache: LDCache) -> [File] {
        let prefixes = list.items.filter { $0.kind == .lib && capabilities.contains($0.capability) }.map(\.name)
        var files: [File] = []
        for e in cache.native where prefixes.contains(where: { e.name.hasPrefix($0) }) {
            guard let r = resolve(e.path) else { continue }
            let name = PathName.basename(r.canonical)
            guard name.hasSuffix(".so." + version) else { continue }
            if let i = files.firstIndex(where: { $0.host == r.host }) {
                if e.name != name, !files[i].links.contains(e.name) { files[i].links.append(e.name) }
                continue
            }
            files.append(File(host: r.host, name: name, links: e.name == name ? [] : [e.name]))
        }
        return files
    }

    /// The selected programs found in the root's usr/bin, usr/sbin or bin.
    public func binaries(capabilities: Set<String>, list: NVIDIAFileList) -> [File] {
        var out: [File] = []
        for item in list.items where item.kind == .bin && capabilities.contains(item.capability) {
            if out.contains(where: { $0.name == item.name }) { continue }
            for dir in ["/usr/bin", "/usr/sbin", "/bin"] {
                guard let r = try? resolver?.resolve(dir + "/" + item.name), r.exists, r.isRegularFile else { continue }
                out.append(File(host: root + r.path, name: item.name))
                break
            }
        }
        return out
    }

    /// The selected plain files (ICDs) that exist: (host path, container path).
    public func otherFiles(capabilities: Set<String>, list: NVIDIAFileList) -> [(host: String, container: String)] {
        var out: [(host: String, container: String)] = []
        for item in list.items where item.kind == .file && capabilities.contains(item.capability) {
            let container = PathName.normalize(item.name)
            guard !out.contains(where: { $0.container == container }),
                let r = try? resolver?.resolve(item.name), r.exists, r.isRegularFile
            else { continue }
            out.append((root + r.path, container))
        }
        return out
    }

    /// `lib/firmware/nvidia/<version>` (GSP firmware), when present.
    public func firmware(version: String) -> (host: String, container: String)? {
        let path = "/lib/firmware/nvidia/" + version
        guard let r = try? resolver?.resolve(path), r.exists, r.isDirectory else { return nil }
        return (root + r.path, path)
    }

    /// Character device `dev/<name>` beneath the root, with its major:minor.
    public func device(_ name: String) -> Device? {
        let host = root + "/dev/" + name
        var st = stat()
        guard lstat(host, &st) == 0, (st.st_mode & S_IFMT) == S_IFCHR else { return nil }
        let rdev = UInt64(st.st_rdev)
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~UInt64(0xfff))
        let minor = (rdev & 0xff) | ((rdev >> 12) & ~UInt64(0xff))
        return Device(host: host, container: "/dev/" + name, major: Int64(major), minor: Int64(minor))
    }

    /// The GPUs: `dev/nvidia<N>` character devices, by N.
    public func gpus() -> [(index: Int, device: Device)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: (root.isEmpty ? "" : root) + "/dev")) ?? []
        return names.compactMap { n -> (Int, Device)? in
            guard n.hasPrefix("nvidia"), let i = Int(n.dropFirst(6)), String(i) == String(n.dropFirst(6)),
                let d = device(n)
            else { return nil }
            return (i, d)
        }.sorted { $0.0 < $1.0 }
    }

    /// `proc/driver/nvidia/gpus/<PCI bus id>/information`: the bus id, `GPU UUID` and
    /// `Device Minor` of each GPU, in PCI bus order.
    func gpuInformation() -> [(bus: String, uuid: String?, minor: Int?)] {
        let dir = root + "/proc/driver/nvidia/gpus"
        var out: [(bus: String, uuid: String?, minor: Int?)] = []
        for bus in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted(by: { $0.lowercased() < $1.lowercased() }) {
            guard let data = resolver?.contents("/proc/driver/nvidia/gpus/\(bus)/information") else { continue }
            var uuid: String?, minor: Int?
            for line in String(decoding: data.prefix(8192), as: UTF8.self).split(separator: "\n") {
                let kv = line.split(separator: ":", maxSplits: 1).map { $0.trimmed(where: \.isBlank) }
                guard kv.count == 2 else { continue }
                if kv[0] == "GPU UUID" { uuid = kv[1] }
                if kv[0] == "Device Minor" { minor = Int(kv[1]) }
            }
            out.append((bus, uuid, minor))
        }
        return out
    }

    /// UUID → device minor.
    public func gpuUUIDs() -> [String: Int] {
        var out: [String: Int] = [:]
        for g in gpuInformation() { if let uuid = g.uuid, let minor = g.minor { out[uuid] = minor } }
        return out
    }

    /// Device minors in PCI bus order: the CUDA index of a GPU under `CUDA_DEVICE_ORDER=PCI_BUS_ID`
    /// is its position here.
    public func pciOrder() -> [Int] { gpuInformation().compactMap(\.minor) }

    /// The control devices every GPU job needs (those present).
    public func controlDevices() -> [Device] {
        ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"].compactMap(device)
    }
}
