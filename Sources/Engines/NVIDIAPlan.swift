import ContainerModel
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// `run --nvidia` / `--gpus`: the one hook of the common plan that provides the host driver.
/// It adds binds (honoured by every engine as volumes) and `ExecutionPlan.devices` (honoured by
/// the R modes through the OCI spec; N1 and the P modes get a /dev built from the host's without
/// the unselected GPUs):
///
/// * libraries and programs at `/usr/local/nvidia/lib64` and `/usr/local/nvidia/bin` (the CUDA
///   images' convention; both are added to `LD_LIBRARY_PATH` / `PATH`): a per-run directory
///   holding one placeholder per file and the soname symlinks is bound there, and every driver
///   file is bound onto its placeholder (read-only: the files are the host's, owned by root);
/// * plain files (ICDs) and the firmware directory at their host paths;
/// * the control devices and the selected `nvidiaN`.
extension PlanBuilder {
    static let nvidiaDirectory = "/usr/local/nvidia"

    /// Called after the mounts and PATH are known. Returns the devices for the plan.
    mutating func addNVIDIA(_ mounts: inout [ExecutionPlan.Mount]) throws -> [ExecutionPlan.Device] {
        let installed = NVIDIASetup.isInstalled(containerDirectory: container.directory)
        guard options.nvidia || options.gpus != nil || installed else { return [] }
        let driver = NVIDIADriver(root: NVIDIADriver.hostRoot(environment: env.hostEnvironment))
        // A container given the driver by `setup --nvidia` (udocker's way) uses its copies:
        // without --nvidia it gets only the devices, and its copies are checked first.
        if installed && !options.nvidia { return try addCopiedNVIDIA(driver, &mounts) }
        // Which GPUs: --gpus, else NVIDIA_VISIBLE_DEVICES (yours, not the image's), else all.
        let gpus = driver.gpus()
        let selection: [Int]?
        do {
            selection = try NVIDIASelection.devices(
                gpus: options.gpus, visible: nvidiaUserValue("NVIDIA_VISIBLE_DEVICES"),
                available: gpus.map(\.index), uuids: driver.gpuUUIDs())
        } catch let e as NVIDIASelection.Failure { throw EngineError.invalid(e.description) }
        guard let selected = selection else {
            warnings.append(.gpu("NVIDIA_VISIBLE_DEVICES=void: running without GPU support"))
            return []
        }
        let capabilities: Set<String>
        let list: NVIDIAFileList
        do {
            capabilities = try NVIDIAFileList.capabilities(from: nvidiaUserValue("NVIDIA_DRIVER_CAPABILITIES"))
            list = try NVIDIAFileList.load(environment: env.hostEnvironment, udockerDir: env.udockerDir)
        } catch let e as NVIDIAFileList.ParseError { throw EngineError.invalid(e.description) }

        // Pre-flight: driver, versions, glibc, CUDA; refuses before anything is set up.
        let image = imageKeys.reduce(into: [String: String]()) { $0[$1] = containerEnv.values[$1] }
        let report = NVIDIAPreflight.run(
            driver: driver, container: container.root, imageEnvironment: image,
            userEnvironment: ["NVIDIA_DISABLE_REQUIRE": nvidiaUserValue("NVIDIA_DISABLE_REQUIRE") ?? ""],
            capabilities: capabilities, list: list)
        if let error = report.findings.first(where: { $0.level == .error }) {
            throw EngineError(.io, "--nvidia: \(error.message)")
        }
        warnings += report.findings.filter { $0.level == .warning }.map { .gpu("--nvidia: \($0.message)") }
        guard let version = report.version else { throw EngineError(.io, "--nvidia: no NVIDIA driver") }

        let run = try makeStagingDirectory()
        let staging = run + "/nvidia"
        guard mkdir(staging, 0o755) == 0 else { throw stagingError(staging) }
        let files = report.libraries
        let programs = driver.binaries(capabilities: capabilities, list: list)
        // Fakechroot binds nothing: a volume is a host path seen at the same path. There the
        // per-run directory holds symlinks to the driver files and is itself the library path.
        let sameRoot = self.capabilities.contains(.volumesKeepHostPath)
        // The driver's files are the host's: bound read-only where the engine can (N1, R, S1);
        // PRoot and Fakechroot cannot, and say so when it matters (files you can write).
        let readOnly = self.capabilities.contains(.readOnlyVolumes)
        try populate(staging + "/lib64", files: files, executable: false, linkToHost: sameRoot)
        try populate(staging + "/bin", files: programs, executable: true, linkToHost: sameRoot)
        let dir = sameRoot ? staging : Self.nvidiaDirectory
        mounts.append(.init(source: staging, target: dir, isSysdir: sameRoot, isDirectory: true, readOnly: readOnly))
        if !sameRoot {
            for f in files {
                mounts.append(
                    .init(source: f.host, target: "\(dir)/lib64/\(f.name)", isSysdir: false, isDirectory: false, readOnly: readOnly))
            }
            for f in programs {
                mounts.append(
                    .init(source: f.host, target: "\(dir)/bin/\(f.name)", isSysdir: false, isDirectory: false, readOnly: readOnly))
            }
        }
        var others = driver.otherFiles(capabilities: capabilities, list: list).map { ($0.host, $0.container, false) }
        if let fw = driver.firmware(version: version) { others.append((fw.host, fw.container, true)) }
        var provided = (files + programs).map(\.host)
        for (host, target, isDirectory) in others {
            if sameRoot && host != target {
                warnings.append(
                    .gpu("--nvidia: \(mode.rawValue) cannot show \(host) at \(target) (Fakechroot volumes keep their host path)"))
                continue
            }
            mounts.append(.init(source: host, target: target, isSysdir: false, isDirectory: isDirectory, readOnly: readOnly))
            provided.append(host)
        }
        if !readOnly, let writable = provided.first(where: { access($0, W_OK) == 0 }) {
            warnings.append(
                .gpu(
                    "--nvidia: \(mode.rawValue) cannot bind the driver files read-only and you can write to \(writable): "
                        + "the container can change it (N1, R1-R3 and S1 bind them read-only)"))
        }
        prependPath("LD_LIBRARY_PATH", "\(dir)/lib64")
        prependPath("PATH", "\(dir)/bin")

        let devices = driver.controlDevices() + gpus.filter { selected.contains($0.index) }.map(\.device)
        return try placeDevices(devices, selected: selected, driver: driver, label: "--nvidia", staging: run, &mounts)
    }

    /// `NVIDIA_*` as the user set them (`-e`, `--env-file`, the host), never the image's.
    func nvidiaUserValue(_ key: String) -> String? {
        if let v = containerEnv.values[key], !imageKeys.contains(key) { return v }
        return env.hostEnvironment[key]
    }

    /// The devices by engine: the R modes put them in the OCI spec (returned); N1 and PRoot get
    /// a per-run /dev with only the selected GPUs (`staging`, or a new per-run directory); the
    /// others see the host /dev as it is, and CUDA gets the selection (`CUDA_VISIBLE_DEVICES`
    /// in PCI bus order) when it is not every GPU.
    mutating func placeDevices(
        _ devices: [ExecutionPlan.Device], selected: [Int], driver: NVIDIADriver, label: String, staging: String?,
        _ mounts: inout [ExecutionPlan.Mount]
    ) throws -> [ExecutionPlan.Device] {
        if capabilities.contains(.deviceOption) { return devices }
        if capabilities.contains(.perRunDevices) {
            try bindDevices(devices, into: &mounts, staging: try staging ?? makeStagingDirectory())
        } else {
            let all = driver.gpus().map(\.index)
            guard Set(selected) != Set(all) else {
                if label == "--nvidia" {
                    warnings.append(
                        .gpu(
                            "--nvidia: \(mode.rawValue) sees the host /dev as it is: GPUs cannot be selected "
                                + "and devices are not added (use N1, P1 or R1 for that)"))
                }
                return []
            }
            let order = driver.pciOrder()
            let indexes = selected.map { order.firstIndex(of: $0) ?? $0 }
            let value = indexes.map(String.init).joined(separator: ",")
            containerEnv.set("CUDA_VISIBLE_DEVICES", value)
            containerEnv.set("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
            imageKeys.remove("CUDA_VISIBLE_DEVICES")
            imageKeys.remove("CUDA_DEVICE_ORDER")
            warnings.append(
                .gpu(
                    "\(label): \(mode.rawValue) sees the host /dev as it is: devices are not added and only CUDA sees "
                        + "the selection (CUDA_VISIBLE_DEVICES=\(value), CUDA_DEVICE_ORDER=PCI_BUS_ID); use N1, P1 or R1 "
                        + "to hide the other GPUs"))
        }
        return []
    }

    /// A container set up with `setup --nvidia` and run without `--nvidia`: the copied driver
    /// must be the running one (else a pre-flight error, before anything starts), and the devices
    /// are selected as for `--nvidia` (`--gpus`, `NVIDIA_VISIBLE_DEVICES`). No driver on this host
    /// (a login node): the container runs without GPUs, as with udocker.
    mutating func addCopiedNVIDIA(_ driver: NVIDIADriver, _ mounts: inout [ExecutionPlan.Mount]) throws -> [ExecutionPlan.Device] {
        let label = "setup --nvidia"
        guard let running = driver.kernelModuleVersion() else {
            if options.gpus != nil {
                throw EngineError(.io, "--gpus: no NVIDIA driver (the kernel module is not loaded)")
            }
            return []
        }
        let gpus = driver.gpus()
        let selection: [Int]?
        do {
            selection = try NVIDIASelection.devices(
                gpus: options.gpus, visible: nvidiaUserValue("NVIDIA_VISIBLE_DEVICES"),
                available: gpus.map(\.index), uuids: driver.gpuUUIDs())
        } catch let e as NVIDIASelection.Failure { throw EngineError.invalid(e.description) }
        guard let selected = selection else {
            warnings.append(.gpu("NVIDIA_VISIBLE_DEVICES=void: running without GPU support"))
            return []
        }
        if let copied = NVIDIASetup.copiedVersion(containerDirectory: container.directory, root: container.root), copied != running {
            throw EngineError(
                .io,
                "the NVIDIA driver copied into the container by setup --nvidia is \(copied) but the running driver is "
                    + "\(running): update it with udocker setup --nvidia --force \(container.id) (or run with --nvidia)")
        }
        // N1/PRoot with every GPU of the real host: its /dev already shows them.
        if selected == gpus.map(\.index), driver.root.isEmpty, capabilities.contains(.perRunDevices) { return [] }
        let devices = driver.controlDevices() + gpus.filter { selected.contains($0.index) }.map(\.device)
        return try placeDevices(devices, selected: selected, driver: driver, label: label, staging: nil, &mounts)
    }

    /// `LD_LIBRARY_PATH` / `PATH`: `entry` first, once.
    mutating func prependPath(_ key: String, _ entry: String) {
        let old = containerEnv.values[key] ?? ""
        let rest = old.split(separator: ":").map(String.init).filter { $0 != entry }
        containerEnv.set(key, ([entry] + rest).joined(separator: ":"))
        imageKeys.remove(key)
    }

    /// A private per-run directory under the temporary directory (removed with the plan).
    mutating func makeStagingDirectory() throws -> String {
        var template = Array((env.tmpDir + "/udocker-nvidia-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else {
            throw EngineError(.io, "--nvidia: cannot create a directory in \(env.tmpDir): \(String(cString: strerror(errno)))")
        }
        let path = String(cString: p)
        temporaryFiles.append(path)
        chmod(path, 0o755)
        return path
    }

    /// Placeholders (mountpoints) named after the files — or symlinks to their host paths when
    /// `linkToHost` — and relative symlinks for their sonames.
    func populate(_ directory: String, files: [NVIDIADriver.File], executable: Bool, linkToHost: Bool) throws {
        guard mkdir(directory, 0o755) == 0 else { throw stagingError(directory) }
        for f in files {
            if linkToHost {
                guard symlink(f.host, directory + "/" + f.name) == 0 else { throw stagingError(directory + "/" + f.name) }
            } else {
                let fd = open(directory + "/" + f.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, executable ? 0o755 : 0o644)
                guard fd >= 0 else { throw stagingError(directory + "/" + f.name) }
                close(fd)
            }
            for l in f.links where l != f.name {
                guard symlink(f.name, directory + "/" + l) == 0 || errno == EEXIST else { throw stagingError(directory + "/" + l) }
            }
        }
    }

    func stagingError(_ path: String) -> EngineError {
        EngineError(.io, "--nvidia: cannot create \(path): \(String(cString: strerror(errno)))")
    }

    /// N1 and PRoot: the host /dev is replaced by a per-run directory with an entry for each of
    /// the host's (bound onto it) except `nvidia*`, plus the selected NVIDIA devices; so an
    /// unselected GPU is not visible. Without the /dev sysdir (`--nosysdirs`), the devices alone.
    mutating func bindDevices(_ devices: [ExecutionPlan.Device], into mounts: inout [ExecutionPlan.Mount], staging: String) throws {
        let nvidia = devices.map { ExecutionPlan.Mount(source: $0.host, target: $0.container, isSysdir: false, isDirectory: false) }
        guard let i = mounts.firstIndex(where: { $0.target == "/dev" && $0.source == "/dev" }) else {
            mounts += nvidia
            return
        }
        let dev = staging + "/dev"
        guard mkdir(dev, 0o755) == 0 else { throw stagingError(dev) }
        var binds: [ExecutionPlan.Mount] = []
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []).sorted()
        for name in names where !name.hasPrefix("nvidia") {
            var st = stat()
            guard lstat("/dev/" + name, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/dev/" + name) {
                    _ = symlink(target, dev + "/" + name)
                }
            case S_IFDIR:
                guard mkdir(dev + "/" + name, 0o755) == 0 else { continue }
                binds.append(.init(source: "/dev/" + name, target: "/dev/" + name, isSysdir: true, isDirectory: true))
            default:
                let fd = open(dev + "/" + name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                guard fd >= 0 else { continue }
                close(fd)
                binds.append(.init(source: "/dev/" + name, target: "/dev/" + name, isSysdir: true, isDirectory: false))
            }
        }
        for d in devices {
            let name = PathName.basename(d.container)
            let fd = open(dev + "/" + name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw stagingError(dev + "/" + name) }
            close(fd)
        }
        mounts[i] = .init(source: dev, target: "/dev", isSysdir: false, isDirectory: true)
        mounts.insert(contentsOf: binds + nvidia, at: i + 1)
    }
}

/// Device selection: `--gpus` and `NVIDIA_VISIBLE_DEVICES` as enroot defines them.
public enum NVIDIASelection {
    public struct Failure: Error, CustomStringConvertible, Equatable { public var description: String }

    /// nil = no GPU support at all (`void`); [] = driver without GPUs (`none`); else the minors.
    /// `gpus` (`all`, `none`, `0,1`, `device=0,1`, UUIDs) wins over `visible`; unset → all.
    public static func devices(gpus: String?, visible: String?, available: [Int], uuids: [String: Int]) throws -> [Int]? {
        let (value, source): (String, String) = {
            if let gpus { return (gpus.hasPrefix("device=") ? String(gpus.dropFirst(7)) : gpus, "--gpus") }
            if let visible, !visible.isEmpty { return (visible, "NVIDIA_VISIBLE_DEVICES") }
            return ("all", "")
        }()
        let v = value.trimmed(where: { "\"' ".contains($0) })
        switch v {
        case "void": return nil
        case "none", "": return []
        case "all": return available
        default: break
        }
        var out: [Int] = []
        for item in v.split(separator: ",").map({ $0.trimmed(where: \.isBlank) }) {
            let index: Int?
            if let n = Int(item), n >= 0 {
                index = n
            } else if item.hasPrefix("GPU-") || item.hasPrefix("MIG-") {
                index = uuids[item]
            } else {
                throw Failure(description: "invalid \(source) value: \(value) (all, none, void, or a list of GPU indexes or UUIDs)")
            }
            guard let i = index, available.contains(i) else {
                let have = available.isEmpty ? "none" : available.map(String.init).joined(separator: ",")
                throw Failure(description: "\(source): no GPU \(item) on this host (GPUs: \(have))")
            }
            if !out.contains(i) { out.append(i) }
        }
        return out
    }
}
